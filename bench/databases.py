"""Where a measurement runs: a new SQLite file, or a new PostgreSQL schema, every time.

A location is a plain dict (it crosses into the measurement's process):
``{"kind": "sqlite", "url": ..., "path": ...}`` or
``{"kind": "postgresql", "url": ..., "base_url": ..., "schema": ..., "conninfo": ...}``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

PG_VARIABLES = ("SMARTCITY_BENCH_POSTGRES_URL", "SMARTCITY_TEST_POSTGRES_URL")


class Database:
    name = "?"

    @contextmanager
    def fresh(self) -> Iterator[dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError
        yield {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def close(self) -> None:
        pass


class SQLite(Database):
    """A new database file per measurement, in a directory removed at the end."""

    name = "SQLite"

    def __init__(self, workdir: str | None = None):
        self.root = tempfile.mkdtemp(prefix="smartcity-bench-", dir=workdir)

    @contextmanager
    def fresh(self) -> Iterator[dict[str, Any]]:
        folder = tempfile.mkdtemp(dir=self.root)
        path = os.path.join(folder, "events.db")
        try:
            yield {"kind": "sqlite", "url": f"sqlite:///{path}", "path": path, "dir": folder}
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        import sqlite3

        return {"name": self.name, "version": sqlite3.sqlite_version,
                "filesystem_dir": self.root}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (drops the +driver part)."""
    return "postgresql://" + url.split("://", 1)[1]


class PostgreSQL(Database):
    """A new schema per measurement (reached through search_path), dropped afterwards."""

    name = "PostgreSQL"

    def __init__(self, url: str):
        self.base_url = _driver_url(url)
        self.conninfo = _conninfo(self.base_url)

    def _admin(self, sql: str) -> Any:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else None

    def check(self) -> str | None:
        """None when the server answers, else why not."""
        try:
            self._admin("SELECT 1")
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            return str(exc).strip().splitlines()[0]

    @contextmanager
    def fresh(self) -> Iterator[dict[str, Any]]:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in self.base_url else "?"
        url = f"{self.base_url}{sep}options={quote(f'-csearch_path={schema}')}"
        try:
            yield {"kind": "postgresql", "url": url, "base_url": self.base_url,
                   "schema": schema, "conninfo": self.conninfo}
        finally:
            self._admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def describe(self) -> dict[str, Any]:
        version = self._admin("SELECT version()")[0][0]
        settings = {name: self._admin(f"SHOW {name}")[0][0]
                    for name in ("synchronous_commit", "fsync", "wal_sync_method")}
        return {"name": self.name, "version": version, "url": self.base_url.split("@")[-1],
                **settings}


def postgres_url(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    for name in PG_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


# ------------------------------------------------------------------ used in measurements
def commit_mode(location: dict[str, Any], cursor: Any | None = None) -> str:
    """How a commit is made durable where ``location`` points, read from the database (the
    connection ``cursor`` belongs to, when given)."""
    if location["kind"] == "sqlite":
        if cursor is None:
            import sqlite3

            conn = sqlite3.connect(location["path"])
            cursor = conn.cursor()
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(cursor.fetchone()[0], "?")
        return f"SQLite journal_mode={journal.upper()}, synchronous={sync}"
    if cursor is None:
        import psycopg

        with psycopg.connect(location["conninfo"], autocommit=True) as conn:
            return commit_mode(location, conn.cursor())
    values = []
    for name in ("synchronous_commit", "fsync"):
        cursor.execute(f"SHOW {name}")
        row = cursor.fetchone()
        values.append(f"{name}={next(iter(row.values())) if isinstance(row, dict) else row[0]}")
    return "PostgreSQL " + ", ".join(values)


@contextmanager
def sub_location(location: dict[str, Any], suffix: str) -> Iterator[dict[str, Any]]:
    """Another fresh location beside ``location`` (for a measurement that needs a new database
    per run): a new file in the same folder, or a new schema, dropped afterwards."""
    if location["kind"] == "sqlite":
        path = os.path.join(location["dir"], f"{suffix}.db")
        yield {**location, "url": f"sqlite:///{path}", "path": path}
        return
    import psycopg

    schema = f"{location['schema']}_{suffix}"
    with psycopg.connect(location["conninfo"], autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in location["base_url"] else "?"
    url = f"{location['base_url']}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        yield {**location, "url": url, "schema": schema}
    finally:
        with psycopg.connect(location["conninfo"], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
