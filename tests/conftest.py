"""Shared fixtures: every store test runs on SQLite and, when a server answers, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from engine.pillars import BUILTIN_ORDER, PillarRegistry, load_registry
from engine.roles import Actor, Role

PG_VARIABLE = "SMARTCITY_TEST_POSTGRES_URL"
# Tests see only the six built-in pillars unless they load others on purpose.
os.environ.setdefault("SMARTCITY_LOAD_PILLARS", ",".join(BUILTIN_ORDER))
os.environ.setdefault("SMARTCITY_LOG_LEVEL", "WARNING")

_pg_status: dict[str, str | None] = {}


def postgres_url_or_skip() -> str:
    url = os.environ.get(PG_VARIABLE)
    if not url:
        pytest.skip(f"{PG_VARIABLE} is not set: PostgreSQL tests skipped")
    if url not in _pg_status:
        try:
            eng = create_engine(url)
            with eng.connect() as conn:
                conn.execute(text("select 1"))
            eng.dispose()
            _pg_status[url] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
            _pg_status[url] = f"no PostgreSQL server answers at {url}: {str(exc).splitlines()[0]}"
    if _pg_status[url]:
        pytest.skip(_pg_status[url])
    return url


def fresh_postgres_schema() -> Iterator[str]:
    """A new schema per test, reached through search_path, dropped afterwards."""
    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.db"
    else:
        yield from fresh_postgres_schema()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_postgres_schema()


@pytest.fixture(scope="session")
def registry() -> PillarRegistry:
    return load_registry(only=BUILTIN_ORDER)


@pytest.fixture
def engine(db_url: str, registry: PillarRegistry):  # type: ignore[no-untyped-def]
    from engine.application import Engine

    eng = Engine(db_url, registry=registry)
    yield eng
    eng.close()


@pytest.fixture
def operator() -> Actor:
    return Actor(id="op-kominfo", role=Role.OPERATOR)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long variants run only when asked for (``-m slow``); the short seeded ones always do."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long variant: run with `python -m pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
