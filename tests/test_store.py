"""The event store's contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from engine.chain import GENESIS, canonical_json, event_hash
from engine.errors import ConcurrencyError, ValidationError
from engine.records import EventMeta, NewEvent
from engine.store.eventstore import EventStore


def ev(n: int, kind: str = "Thing") -> NewEvent:
    return NewEvent(kind, 1, canonical_json({"n": n, "text": "x" * 40}))


def meta(cmd: str, actor: str = "op", role: str = "operator") -> EventMeta:
    return EventMeta(actor_id=actor, actor_role=role, command_id=cmd, correlation_id=f"c-{cmd}")


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    s = EventStore(db_url)
    yield s
    s.close()


def test_append_assigns_versions_positions_and_chains_hashes(store: EventStore) -> None:
    first = store.append("s-1", 0, [ev(1), ev(2)], meta("a"))
    second = store.append("s-1", 2, [ev(3)], meta("b"))
    assert [e.version for e in first + second] == [1, 2, 3]
    assert [e.position for e in first + second] == sorted(e.position for e in first + second)
    previous = GENESIS
    for e in store.read_stream("s-1"):
        expected = event_hash(previous, e.stream_id, e.version, e.event_type, e.schema_version,
                              e.actor_id, e.actor_role, e.occurred_at, e.command_id,
                              e.correlation_id, e.causation_id, e.payload)
        assert e.hash == expected
        previous = e.hash
    assert store.heads()["s-1"] == (3, previous)


def test_hash_is_plain_sha256_over_length_prefixed_fields(store: EventStore) -> None:
    [e] = store.append("s-h", 0, [ev(7)], meta("h"))
    h = hashlib.sha256()
    for part in ("", "s-h", "1", "Thing", "1", "op", "operator", e.occurred_at, "h", "c-h", ""):
        b = part.encode()
        h.update(len(b).to_bytes(8, "big") + b)
    h.update(len(e.payload).to_bytes(8, "big") + e.payload)
    assert e.hash == h.hexdigest()


def test_expected_version_mismatch_raises_and_writes_nothing(store: EventStore) -> None:
    store.append("s-2", 0, [ev(1)], meta("a"))
    with pytest.raises(ConcurrencyError) as info:
        store.append("s-2", 0, [ev(2), ev(3)], meta("b"))
    assert info.value.actual == 1
    assert [e.version for e in store.read_stream("s-2")] == [1]
    assert store.events_for_command("b") == []


def test_new_stream_must_expect_version_zero(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError):
        store.append("s-3", 4, [ev(1)], meta("a"))
    assert store.read_stream("s-3") == []


def test_repeated_command_id_writes_nothing_and_returns_first_events(store: EventStore) -> None:
    first = store.append("s-4", 0, [ev(1), ev(2)], meta("same"))
    again = store.append("s-4", 2, [ev(9)], meta("same"))
    assert again == first
    assert len(store.read_stream("s-4")) == 2
    # even with a stale expected version the recorded command wins (retry after success)
    assert store.append("s-4", 0, [ev(1), ev(2)], meta("same")) == first


def test_batch_is_atomic_on_conflict_midway(store: EventStore) -> None:
    store.append("s-5", 0, [ev(1)], meta("a"))
    with pytest.raises(ConcurrencyError):
        store.append("s-5", 0, [ev(2), ev(3), ev(4)], meta("b"))
    assert store.stream_version("s-5") == 1


def test_unique_stream_version_holds_in_the_database(store: EventStore) -> None:
    """Without the version check (expected None) the unique constraint still refuses."""
    from sqlalchemy import insert

    from engine.store.schema import events

    store.append("s-6", 0, [ev(1)], meta("a"))
    row = {"stream_id": "s-6", "version": 1, "event_type": "X", "schema_version": 1,
           "payload": "{}", "actor_id": "a", "actor_role": "operator",
           "occurred_at": "2026-01-01T00:00:00.000000Z", "command_id": "zz",
           "correlation_id": "zz", "causation_id": "", "hash": "0" * 64}
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(events), row)


def test_read_stream_from_version(store: EventStore) -> None:
    store.append("s-7", 0, [ev(i) for i in range(1, 6)], meta("a"))
    assert [e.version for e in store.read_stream("s-7", from_version=3)] == [3, 4, 5]
    assert [e.version for e in store.read_stream("s-7", 2, 3)] == [2, 3]


def test_read_all_pages_in_log_order(store: EventStore) -> None:
    for s in range(5):
        store.append(f"page-{s}", 0, [ev(i) for i in range(7)], meta(f"p{s}"))
    all_events = list(store.read_all(page_size=4))
    assert len(all_events) == 35
    positions = [e.position for e in all_events]
    assert positions == sorted(positions) and len(set(positions)) == 35
    after = list(store.read_all(from_position=positions[9], page_size=3))
    assert [e.position for e in after] == positions[10:]
    assert {e.stream_id for e in store.read_all(stream_prefix="page-3")} == {"page-3"}


def test_payload_bytes_are_canonical_and_floats_refused() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    with pytest.raises(ValidationError) as info:
        canonical_json({"a": {"b": 1.5}})
    assert "payload.a.b" in str(info.value)


def test_stored_payload_round_trips_exactly(store: EventStore) -> None:
    payload = canonical_json({"nama": "Kota Mojokerto", "emoji": "\U0001f600", "n": 10**15})
    store.append("s-8", 0, [NewEvent("T", 1, payload)], meta("u"))
    [e] = store.read_stream("s-8")
    assert e.payload == payload
    assert orjson.loads(e.payload)["emoji"] == "\U0001f600"


def test_empty_command_id_refused(store: EventStore) -> None:
    with pytest.raises(ValidationError):
        store.append("s-9", 0, [ev(1)], meta(""))


def test_repeated_command_without_expected_version_or_on_another_stream(
        store: EventStore) -> None:
    first = store.append("s-8", None, [ev(1)], meta("once"))
    assert store.append("s-8", None, [ev(2)], meta("once")) == first
    assert store.append("s-9", 0, [ev(3)], meta("once")) == first
    assert store.read_stream("s-9") == []
    assert [e.version for e in store.read_stream("s-8")] == [1]


def test_an_append_on_a_dead_connection_fails_and_the_next_reconnects(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite keeps one connection for appends: when it dies, the append fails with
    SQLAlchemy's error, writes nothing, and the next append opens a new one."""
    from sqlalchemy.exc import DBAPIError

    store = EventStore(f"sqlite:///{tmp_path / 'dead.db'}")
    try:
        store.append("s-1", 0, [ev(1)], meta("a"))
        store._writer_raw.dbapi_connection.close()  # the kept connection dies
        with pytest.raises(DBAPIError) as info:
            store.append("s-1", 1, [ev(2)], meta("b"))
        assert info.value.connection_invalidated
        assert store.append("s-1", 1, [ev(2)], meta("b"))[0].version == 2
        assert [e.version for e in store.read_stream("s-1")] == [1, 2]
    finally:
        store.close()


def test_a_forked_child_appends_through_its_own_connection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing as mp

    url = f"sqlite:///{tmp_path / 'fork.db'}"
    store = EventStore(url)
    try:
        store.append("s-1", 0, [ev(1)], meta("parent-1"))
        parent_connection = store._writer_raw.dbapi_connection
        child = mp.get_context("fork").Process(target=_append_in_child, args=(store,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert store._writer_raw.dbapi_connection is parent_connection  # untouched
        store.append("s-1", 2, [ev(3)], meta("parent-2"))
        assert [e.command_id for e in store.read_stream("s-1")] == [
            "parent-1", "child", "parent-2"]
    finally:
        store.close()


def _append_in_child(store: EventStore) -> None:
    inherited = store._writer_raw
    store.append("s-1", 1, [ev(2)], meta("child"))
    assert store._writer_raw is not inherited


def _skip_positions(store: EventStore, count: int) -> list[tuple[str, int]]:
    """Make the next append's position jump by ``count``: on PostgreSQL as rolled-back
    appends do; SQLite reuses positions, so there an event is written at the far position
    (returned, as (stream, version))."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        if store.is_postgres:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('events', 'position'), "
                              "(SELECT max(position) FROM events) + :n)"), {"n": count})
            return []
        conn.execute(text(
            "INSERT INTO events (position, stream_id, version, event_type, schema_version, "
            "payload, actor_id, actor_role, occurred_at, command_id, correlation_id, "
            "causation_id, hash) SELECT max(position) + :n, :s, 1, 'Gap', 1, '{}', 'a', "
            "'operator', '2026-01-01T00:00:00.000000Z', :s, :s, '', '' FROM events"),
            {"n": count, "s": f"gap-{count}"})
        return [(f"gap-{count}", 1)]


def test_reading_the_log_crosses_gaps_in_positions(store: EventStore) -> None:
    store.append("s-1", 0, [ev(1), ev(2)], meta("a"))
    written = _skip_positions(store, 3)
    store.append("s-2", 0, [ev(3)], meta("b"))
    written += _skip_positions(store, 1_000_000)
    store.append("s-1", 2, [ev(4), ev(5), ev(6)], meta("c"))
    everything = list(store.read_all(page_size=2))
    expected = [("s-1", 1), ("s-1", 2), ("s-2", 1), ("s-1", 3), ("s-1", 4), ("s-1", 5)]
    assert sorted((e.stream_id, e.version) for e in everything) == sorted(expected + written)
    ours = [e for e in everything if not e.stream_id.startswith("gap")]
    assert [(e.stream_id, e.version) for e in ours] == expected
    assert ours[3].position > ours[2].position + 1_000_000
    positions = [e.position for e in everything]
    assert positions == sorted(positions)
    after = ours[1].position
    assert [e.position for e in store.read_all(after, page_size=2)] == [
        p for p in positions if p > after]
    pages = list(store.read_rows(after, ours[4].position, page_size=2, prefix="s-1"))
    assert [row[0] for page in pages for row in page] == [ours[3].position, ours[4].position]


def test_reading_the_log_reads_what_was_appended_meanwhile(store: EventStore) -> None:
    store.append("s-1", 0, [ev(1), ev(2), ev(3)], meta("a"))
    reader = store.read_all(page_size=2)
    assert [next(reader).version, next(reader).version] == [1, 2]
    store.append("s-1", 3, [ev(4), ev(5), ev(6)], meta("b"))
    assert [e.version for e in reader] == [3, 4, 5, 6]
