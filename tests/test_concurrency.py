"""Two real OS processes appending to the same plan at once: one wins, the other conflicts."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from engine.domain.events import encode
from engine.domain.plan import QuickWinProposed, plan_stream
from engine.errors import ConcurrencyError
from engine.records import EventMeta


def _writer(url: str, stream: str, name: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from engine.store.eventstore import EventStore

    store = EventStore(url)
    version = store.stream_version(stream)
    barrier.wait(timeout=30)  # both have read the same version; now both append
    event = QuickWinProposed(quick_win_id=name, pillar="governance", name=name, agency="BAPPEDA")
    try:
        store.append(stream, version, [encode(event)],
                     EventMeta(actor_id=name, actor_role="operator", command_id=f"cmd-{name}",
                               correlation_id=name))
        results.put((name, "ok"))
    except ConcurrencyError:
        results.put((name, "conflict"))
    finally:
        store.close()


@pytest.mark.parametrize("rounds", [3])
def test_two_processes_one_wins_the_other_conflicts(engine, operator, db_url, rounds) -> None:  # type: ignore[no-untyped-def]
    engine.create_programme(operator, "m100-2023", "Menuju 100 Smart City 2023", 2023, ["35.02"])
    engine.execute(operator, "m100-2023", "35.02", "EnrolRegion",
                   {"programme_id": "m100-2023", "region_code": "35.02"})
    stream = plan_stream("m100-2023", "35.02")
    ctx = mp.get_context("spawn")
    for r in range(rounds):
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(db_url, stream, f"r{r}-{n}", barrier, results))
                 for n in ("a", "b")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        outcome = sorted(results.get(timeout=5)[1] for _ in procs)
        assert outcome == ["conflict", "ok"]
    versions = [e.version for e in engine.store.read_stream(stream)]
    assert versions == list(range(1, rounds + 2))  # contiguous: enrolment + one per round
