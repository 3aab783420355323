"""Users of the HTTP API and dashboard, with per-user API tokens stored as hashes.

A token is 32 random bytes (URL-safe base64), shown once when the user is created.
Only its SHA-256 is stored: with that much entropy a plain hash is enough, and a
stolen database gives no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.chain import format_time
from engine.errors import FieldError, NotFound, ValidationError
from engine.regions import get_region
from engine.roles import Actor, Role
from engine.store.eventstore import EventStore
from engine.store.schema import users

TOKEN_PREFIX = "sc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(store: EventStore, user_id: str, name: str, role: Role | str,
             region: str | None = None) -> str:
    """Create a user and return their API token (the only time it is ever visible)."""
    try:
        actor = Actor(id=user_id, role=Role(role), region=region)
    except (PydanticValidationError, ValueError) as exc:
        if isinstance(exc, PydanticValidationError):
            raise ValidationError.from_pydantic(exc) from None
        raise ValidationError(FieldError("role", str(exc),
                                         fix="one of " + ", ".join(r.value for r in Role))) \
            from None
    if region:
        get_region(region, "region")
    if not name.strip():
        raise ValidationError(FieldError("name", "must not be blank"))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with store.engine.connect().execution_options(smartcity_write=True) as conn:
            with conn.begin():
                conn.execute(insert(users), {
                    "user_id": actor.id, "name": name.strip(), "role": actor.role.value,
                    "region": actor.region, "token_hash": hash_token(token),
                    "created_at": format_time(datetime.now(UTC)), "disabled": False})
    except IntegrityError:
        raise ValidationError(FieldError("user_id", f"user {user_id!r} exists already",
                                         fix="choose another id")) from None
    return token


def actor_for_token(store: EventStore, token: str) -> Actor | None:
    """The user a token belongs to, as the Actor their requests act as; None if unknown."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    with store.engine.connect() as conn:
        row = conn.execute(select(users.c.user_id, users.c.role, users.c.region,
                                  users.c.disabled)
                           .where(users.c.token_hash == hash_token(token))).first()
    if row is None or row.disabled:
        return None
    return Actor(id=row.user_id, role=Role(row.role), region=row.region)


def user_name(store: EventStore, user_id: str) -> str:
    with store.engine.connect() as conn:
        name = conn.execute(select(users.c.name).where(users.c.user_id == user_id)).scalar()
    return name or user_id


def disable_user(store: EventStore, user_id: str) -> None:
    with store.engine.connect().execution_options(smartcity_write=True) as conn:
        with conn.begin():
            done = conn.execute(update(users).where(users.c.user_id == user_id)
                                .values(disabled=True)).rowcount
    if not done:
        raise NotFound(f"no user {user_id!r}")
