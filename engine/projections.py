"""The cohort progress read model: one row per plan, per form and per quick win,
kept up to date from the log.

The projector reads events after its checkpoint page by page and applies each page in
one transaction together with the new checkpoint, so after a crash it resumes where
the last committed page ended and never applies an event twice. ``rebuild`` starts
again from nothing. Rows hold counts (submissions, findings, progress reports), so a
double application would show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from engine.domain import plan as P
from engine.domain.events import decode
from engine.records import StoredEvent
from engine.store.eventstore import EventStore
from engine.store.schema import (
    form_progress,
    plan_progress,
    projection_checkpoints,
    quick_win_progress,
)

NAME = "cohort_progress"
TABLES = (plan_progress, form_progress, quick_win_progress)


@dataclass(frozen=True)
class Checkpoint:
    position: int
    events: int


class CohortProjection:
    """Builds plan_progress, form_progress and quick_win_progress from the log."""

    name = NAME

    def __init__(self, store: EventStore, page_size: int = 500):
        self.store = store
        self.page_size = page_size

    # ------------------------------------------------------------------ running
    def checkpoint(self) -> Checkpoint:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(projection_checkpoints.c.position,
                                      projection_checkpoints.c.events)
                               .where(projection_checkpoints.c.name == self.name)).first()
        return Checkpoint(int(row[0]), int(row[1])) if row else Checkpoint(0, 0)

    def run(self, *, max_pages: int | None = None,
            on_page: Callable[[int], None] | None = None) -> int:
        """Apply every event after the checkpoint; returns how many were applied."""
        applied = 0
        pages = 0
        while max_pages is None or pages < max_pages:
            start = self.checkpoint().position
            page = list(_take(self.store.read_all(start, self.page_size), self.page_size))
            if not page:
                break
            applied += self._apply_page(page)
            pages += 1
            if on_page is not None:
                on_page(len(page))
            if len(page) < self.page_size:
                break
        return applied

    def rebuild(self, **kw: Any) -> int:
        """Forget everything and apply the whole log again."""
        with self.store.engine.connect().execution_options(smartcity_write=True) as conn:
            with conn.begin():
                for table in TABLES:
                    conn.execute(delete(table))
                conn.execute(delete(projection_checkpoints)
                             .where(projection_checkpoints.c.name == self.name))
        return self.run(**kw)

    # ------------------------------------------------------------------ applying
    def _apply_page(self, page: list[StoredEvent]) -> int:
        with self.store.engine.connect().execution_options(smartcity_write=True) as conn:
            with conn.begin():
                current = self._locked_checkpoint(conn)
                todo = [ev for ev in page if ev.position > current.position]
                if not todo:
                    return 0  # another projector applied this page first
                rows = _Rows.load(conn, {ev.stream_id for ev in todo
                                         if ev.stream_id.startswith("plan:")})
                for ev in todo:
                    if ev.stream_id.startswith("plan:"):
                        rows.apply(ev)
                rows.save(conn)
                self._save_checkpoint(conn, current, todo[-1].position,
                                      current.events + len(todo))
                return len(todo)

    def _locked_checkpoint(self, conn: Connection) -> Checkpoint:
        query = select(projection_checkpoints.c.position, projection_checkpoints.c.events).where(
            projection_checkpoints.c.name == self.name)
        if self.store.is_postgres:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return Checkpoint(int(row[0]), int(row[1])) if row else Checkpoint(-1, 0)

    def _save_checkpoint(self, conn: Connection, old: Checkpoint, position: int,
                         count: int) -> None:
        if old.position < 0:
            conn.execute(insert(projection_checkpoints),
                         {"name": self.name, "position": position, "events": count})
        else:
            conn.execute(update(projection_checkpoints)
                         .where(projection_checkpoints.c.name == self.name)
                         .values(position=position, events=count))

    # ------------------------------------------------------------------ reading
    def plans(self, programme_id: str | None = None) -> list[dict[str, Any]]:
        query = select(plan_progress).order_by(plan_progress.c.stream_id)
        if programme_id is not None:
            query = query.where(plan_progress.c.programme_id == programme_id)
        with self.store.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(query)]

    def forms(self, stream_id: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(
                select(form_progress).where(form_progress.c.stream_id == stream_id)
                .order_by(form_progress.c.stage, form_progress.c.pillar, form_progress.c.form))]

    def quick_wins(self, stream_id: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(
                select(quick_win_progress).where(quick_win_progress.c.stream_id == stream_id)
                .order_by(quick_win_progress.c.quick_win_id))]


class LiveProgress:
    """The read model's plan rows kept in memory and fed with what the log gained since the
    last call, writing nothing: for progress displays that poll while a cohort runs (each
    poll reads only the new events, where folding every plan again reads them all)."""

    def __init__(self, store: EventStore, programme_id: str):
        self.store = store
        self.prefix = f"plan:{programme_id}:"
        self.after = 0
        self.rows = _Rows()

    def refresh(self) -> dict[str, dict[str, Any]]:
        """Every plan's row (``stage``, ``status``, ``review_round`` ...) by stream id."""
        for stored in self.store.read_all(self.after, stream_prefix=self.prefix):
            self.rows.apply(stored)
            self.after = stored.position
        return self.rows.plans


def _plain(row: Any) -> dict[str, Any]:
    return {str(k): v for k, v in row._mapping.items()}


def _take(it: Any, n: int) -> Any:
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item


class _Rows:
    """The rows a page touches, loaded once, changed in memory, written back once."""

    def __init__(self) -> None:
        self.plans: dict[str, dict[str, Any]] = {}
        self.forms: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.qws: dict[tuple[str, str], dict[str, Any]] = {}
        self.new: set[tuple[str, Any]] = set()
        self.dirty: set[tuple[str, Any]] = set()

    @classmethod
    def load(cls, conn: Connection, streams: set[str]) -> _Rows:
        rows = cls()
        if not streams:
            return rows
        ids = sorted(streams)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for r in conn.execute(select(plan_progress)
                                  .where(plan_progress.c.stream_id.in_(chunk))):
                rows.plans[r.stream_id] = _plain(r)
            for r in conn.execute(select(form_progress)
                                  .where(form_progress.c.stream_id.in_(chunk))):
                rows.forms[(r.stream_id, r.stage, r.pillar, r.form)] = _plain(r)
            for r in conn.execute(select(quick_win_progress)
                                  .where(quick_win_progress.c.stream_id.in_(chunk))):
                rows.qws[(r.stream_id, r.quick_win_id)] = _plain(r)
        return rows

    def _touch(self, kind: str, key: Any, exists: bool) -> None:
        (self.dirty if exists else self.new).add((kind, key))

    def apply(self, stored: StoredEvent) -> None:
        ev = decode(stored)
        sid = stored.stream_id
        if isinstance(ev, P.PlanEnrolled):
            self.plans[sid] = {
                "stream_id": sid, "programme_id": ev.programme_id, "region_code": ev.region_code,
                "region_name": ev.region_name, "stage": "enrolled", "status": "done",
                "review_round": 0, "findings": 0, "refusals": 0,
                "version": stored.version, "updated_at": stored.occurred_at}
            self._touch("plan", sid, False)
            return
        row = self.plans[sid]
        if ("plan", sid) not in self.new:
            self._touch("plan", sid, True)
        row["version"], row["updated_at"] = stored.version, stored.occurred_at
        match ev:
            case P.StageStarted(stage=stage):
                row["stage"], row["status"] = stage, "open"
            case P.StageCompleted(stage=stage):
                row["stage"], row["status"] = stage, "done"
            case P.FormSubmitted():
                key = (sid, ev.stage, ev.pillar, ev.form)
                form = self.forms.get(key)
                if form is None:
                    self.forms[key] = {"stream_id": sid, "stage": ev.stage, "pillar": ev.pillar,
                                       "form": ev.form, "submissions": 1}
                    self._touch("form", key, False)
                else:
                    form["submissions"] += 1
                    if ("form", key) not in self.new:
                        self._touch("form", key, True)
            case P.QuickWinProposed():
                key2 = (sid, ev.quick_win_id)
                self.qws[key2] = {"stream_id": sid, "quick_win_id": ev.quick_win_id,
                                  "pillar": ev.pillar, "completion_percent": 0, "reports": 0}
                self._touch("qw", key2, False)
            case P.QuickWinProgressReported():
                key2 = (sid, ev.quick_win_id)
                qw = self.qws[key2]
                qw["completion_percent"] = ev.completion_percent
                qw["reports"] += 1
                if ("qw", key2) not in self.new:
                    self._touch("qw", key2, True)
            case P.SubmittedForReview(round=rnd):
                row["stage"], row["status"], row["review_round"] = "review", "open", rnd
            case P.ReviewFindingRecorded():
                row["findings"] += 1
            case P.ReviewPassed():
                row["status"] = "done"
            case P.ReturnedForRevision():
                row["stage"], row["status"] = "bimtek_4", "open"
            case P.ApprovedByRegent():
                row["stage"], row["status"] = "approved", "done"
            case P.ApprovalRefused():
                row["status"] = "open"
                row["refusals"] += 1
            case _:
                pass  # risks and other detail are not part of this read model

    def save(self, conn: Connection) -> None:
        tables = {"plan": (plan_progress, self.plans, ("stream_id",)),
                  "form": (form_progress, self.forms, ("stream_id", "stage", "pillar", "form")),
                  "qw": (quick_win_progress, self.qws, ("stream_id", "quick_win_id"))}
        for kind, (table, data, keys) in tables.items():
            new = [data[k] for (t, k) in sorted(self.new, key=str) if t == kind]
            if new:
                conn.execute(insert(table), new)
            for (t, k) in self.dirty:
                if t != kind or (t, k) in self.new:
                    continue
                values = data[k]
                cond = and_(*[table.c[c] == values[c] for c in keys])
                conn.execute(update(table).where(cond).values(
                    {c: v for c, v in values.items() if c not in keys}))


__all__ = ["NAME", "Checkpoint", "CohortProjection"]
