"""The machinery every scenario shares: figures, table rows, targets, the scenario registry,
and running one measurement in its own process so its peak RSS is its own.

A scenario is one function registered with ``@scenario``; it receives a ``Context`` and
returns ``Row`` objects. Each figure it needs comes from ``ctx.measure(target, db, ...)``,
which runs ``target`` (a ``"module:function"`` name) in a fresh spawned process. The target
receives its keyword arguments, runs its own warm-up and ``runs`` timed runs, and returns a
dict with ``runs`` (one value per timed run), ``unit`` and anything else worth keeping.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import resource
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

CHILD_TIMEOUT = 3600.0  # seconds one measurement may take before it is recorded as failed


# ------------------------------------------------------------------------------- figures
@dataclass
class Figure:
    """One measured quantity: the median of ``runs`` in ``unit``."""

    system: str  # "ours", "eventsourcing 9.5.6", "bare row per transaction", ...
    unit: str  # "events/s", "ms", "s", "us/event"
    higher_is_better: bool
    runs: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    commit_mode: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the measurement could not be taken
    unavailable: str | None = None  # e.g. "not installed"

    @property
    def value(self) -> float | None:
        return statistics.median(self.runs) if self.runs and not self.error else None

    @property
    def ok(self) -> bool:
        return self.value is not None

    def advantage_over(self, other: Figure | None) -> float | None:
        """How many times better this figure is than ``other`` (>1: better), whatever the
        unit's direction."""
        if other is None or not self.ok or not other.ok or not self.value or not other.value:
            return None
        a, b = self.value, other.value
        return a / b if self.higher_is_better else b / a

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["median"] = self.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        data = {k: v for k, v in data.items() if k != "median"}
        return cls(**data)


@dataclass
class Target:
    """The bar a row must reach, as text and as a check on the row's figures."""

    text: str
    check: Callable[[Row], bool | None] | None = None


@dataclass
class Row:
    """One line of the table: our figure beside the peer's and the limit's."""

    scenario: str
    case: str
    database: str
    ours: Figure
    peer: Figure | None = None
    limit: Figure | None = None
    target: Target | None = None
    # extra ratios a scenario wants shown, e.g. {"cost/event vs 10^4": 1.04}
    ratios: dict[str, float] = field(default_factory=dict)
    met: bool | None = None
    notes: str = ""

    @property
    def vs_peer(self) -> float | None:
        return self.ours.advantage_over(self.peer)

    @property
    def vs_limit(self) -> float | None:
        return self.ours.advantage_over(self.limit)

    def evaluate(self) -> None:
        if self.target is None or self.target.check is None:
            self.met = None
            return
        try:
            self.met = self.target.check(self)
        except TypeError:  # a figure is missing
            self.met = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "case": self.case, "database": self.database,
            "ours": self.ours.to_json(),
            "peer": self.peer.to_json() if self.peer else None,
            "limit": self.limit.to_json() if self.limit else None,
            "vs_peer": self.vs_peer, "vs_limit": self.vs_limit, "ratios": self.ratios,
            "target": self.target.text if self.target else None, "met": self.met,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        row = cls(scenario=data["scenario"], case=data["case"], database=data["database"],
                  ours=Figure.from_json(data["ours"]),
                  peer=Figure.from_json(data["peer"]) if data.get("peer") else None,
                  limit=Figure.from_json(data["limit"]) if data.get("limit") else None,
                  target=Target(data["target"]) if data.get("target") else None,
                  ratios=data.get("ratios") or {}, notes=data.get("notes", ""))
        row.met = data.get("met")
        return row


def at_least(attr: str, bar: float) -> Callable[[Row], bool | None]:
    """A check: ``row.<attr>`` (vs_peer, vs_limit or a key of ratios) is at least ``bar``."""

    def check(row: Row) -> bool | None:
        value = getattr(row, attr) if attr in ("vs_peer", "vs_limit") else row.ratios.get(attr)
        return None if value is None else value >= bar

    return check


def at_most(key: str, bar: float) -> Callable[[Row], bool | None]:
    def check(row: Row) -> bool | None:
        value = row.ratios.get(key)
        return None if value is None else value <= bar

    return check


def all_of(*checks: Callable[[Row], bool | None]) -> Callable[[Row], bool | None]:
    def check(row: Row) -> bool | None:
        results = [c(row) for c in checks]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True

    return check


# ------------------------------------------------------------------------------ registry
@dataclass
class Scenario:
    id: str
    title: str
    fn: Callable[[Context], list[Row]]
    order: int


SCENARIOS: dict[str, Scenario] = {}


def scenario(id: str, title: str, order: int) -> Callable[[Callable[[Context], list[Row]]],
                                                           Callable[[Context], list[Row]]]:
    """Register a scenario: ``@scenario("replay", "2. Replay", order=2)``."""

    def register(fn: Callable[[Context], list[Row]]) -> Callable[[Context], list[Row]]:
        SCENARIOS[id] = Scenario(id, title, fn, order)
        return fn

    return register


# ------------------------------------------------------------------------------- context
@dataclass
class Context:
    """What a scenario gets: the databases to run on, the mode, and ``measure``."""

    databases: list[Any]  # bench.databases.Database
    quick: bool
    runs: int
    log: Callable[[str], None] = print

    def measure(self, target: str, db: Any, *, system: str, unit: str,
                higher_is_better: bool, fresh: bool = True, **kwargs: Any) -> Figure:
        """Run ``target`` in a spawned process against a fresh location on ``db`` and
        return its Figure (median of its runs, its own peak RSS)."""
        self.log(f"  {system} on {db.name}: {target.split(':')[1]} ...")
        started = time.perf_counter()
        with (db.fresh() if fresh else _nothing()) as location:
            kwargs = {"runs": self.runs, "quick": self.quick, "location": location, **kwargs}
            result = run_in_child(target, kwargs)
        figure = Figure(system=system, unit=unit, higher_is_better=higher_is_better)
        if "error" in result:
            figure.error = result["error"]
            self.log(f"    failed: {result['error'].strip().splitlines()[-1]}")
            return figure
        if result.get("unavailable"):
            figure.unavailable = result["unavailable"]
            self.log(f"    {result['unavailable']}")
            return figure
        figure.runs = [float(v) for v in result.pop("runs")]
        figure.peak_rss_mb = result.pop("peak_rss_mb", None)
        figure.commit_mode = result.pop("commit_mode", "")
        figure.notes = result.pop("notes", "")
        result.pop("unit", None)
        figure.extra = result
        self.log(f"    {figure.value:,.1f} {unit} (runs {', '.join(f'{v:,.1f}' for v in figure.runs)};"
                 f" peak RSS {figure.peak_rss_mb or 0:.0f} MB; {time.perf_counter() - started:.1f} s)")
        return figure


    def compare(self, db: Any, *specs: dict[str, Any]) -> list[Figure]:
        """Measure several systems against each other, interleaved: each spec's target runs
        ``self.runs`` times, one timed run per process, round robin (A B C A B C ...), so a
        drift in the machine (fsync latency on a shared disk, a neighbour's load) falls on
        every system alike. A spec is ``dict(target=..., system=..., unit=...,
        higher_is_better=..., **kwargs)``."""
        if self.quick:  # a smoke run: one process per figure, all its runs inside
            return [self.measure(s["target"], db, **{k: v for k, v in s.items()
                                                     if k != "target"}) for s in specs]
        figures = [Figure(system=s["system"], unit=s["unit"],
                          higher_is_better=s["higher_is_better"]) for s in specs]
        self.log(f"  on {db.name}, interleaved: " + " / ".join(f.system for f in figures))
        started = time.perf_counter()
        for _ in range(self.runs):
            for spec, figure in zip(specs, figures, strict=True):
                if figure.error or figure.unavailable:
                    continue
                kwargs = {k: v for k, v in spec.items()
                          if k not in ("target", "system", "unit", "higher_is_better")}
                with db.fresh() as location:
                    result = run_in_child(spec["target"], {"runs": 1, "quick": self.quick,
                                                           "location": location, **kwargs})
                if "error" in result:
                    figure.error = result["error"]
                    self.log(f"    {figure.system} failed: "
                             f"{result['error'].strip().splitlines()[-1]}")
                    continue
                if result.get("unavailable"):
                    figure.unavailable = result["unavailable"]
                    continue
                figure.runs += [float(v) for v in result.pop("runs")]
                rss = result.pop("peak_rss_mb", None)
                figure.peak_rss_mb = max(figure.peak_rss_mb or 0, rss or 0) or None
                figure.commit_mode = result.pop("commit_mode", "") or figure.commit_mode
                figure.notes = result.pop("notes", "") or figure.notes
                result.pop("unit", None)
                for key, value in result.items():
                    if isinstance(value, list):
                        figure.extra.setdefault(key, []).extend(value)
                    else:
                        figure.extra.setdefault(key, value)
        for f in figures:
            if f.ok:
                self.log(f"    {f.system}: {f.value:,.1f} {f.unit} (runs "
                         f"{', '.join(f'{v:,.1f}' for v in f.runs)}; peak RSS "
                         f"{f.peak_rss_mb or 0:.0f} MB)")
            elif f.unavailable:
                self.log(f"    {f.system}: {f.unavailable}")
        self.log(f"    ({time.perf_counter() - started:.1f} s)")
        return figures


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


# ------------------------------------------------------------------------ child processes
def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tree_pss(pid: int) -> int:
    """PSS in bytes summed over process ``pid`` and the processes it started, 0 when it
    started none (its own peak RSS says more then) or psutil is missing."""
    try:
        import psutil

        proc = psutil.Process(pid)
        children = proc.children(recursive=True)
        if not children:
            return 0
        total = proc.memory_full_info().pss
    except Exception:  # noqa: BLE001 - gone, or no psutil: nothing to add
        return 0
    for child in children:
        with suppress(Exception):
            total += child.memory_full_info().pss
    return total


def _child(target: str, kwargs: dict[str, Any], conn: Any) -> None:
    try:
        module, name = target.split(":")
        fn = getattr(importlib.import_module(module), name)
        result = fn(**kwargs)
        result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
        conn.send(result)
    except BaseException:  # noqa: BLE001 - reported to the parent, which goes on
        conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def run_in_child(target: str, kwargs: dict[str, Any],
                 timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """Run ``target(**kwargs)`` in a freshly spawned interpreter and return its dict."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(target, kwargs, child), daemon=False)
    proc.start()
    child.close()
    deadline = time.monotonic() + timeout
    result: dict[str, Any] | None = None
    tree_peak = 0
    while result is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # The measurement's processes, sampled from here so the measured process runs no
        # extra thread (verify forks workers only from a single-threaded process).
        tree_peak = max(tree_peak, _tree_pss(proc.pid))
        if parent.poll(min(remaining, 0.25)):
            try:
                result = parent.recv()
            except EOFError:
                break
        elif not proc.is_alive():
            if parent.poll(0.1):
                continue
            break
    if result is None:
        if proc.is_alive():
            proc.kill()
        proc.join(10)
        return {"error": f"the measurement process ended without a result "
                         f"(exit code {proc.exitcode}, timeout {timeout:.0f} s)"}
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
    if tree_peak and "peak_rss_mb" in result:
        result["peak_rss_mb"] = round(max(result["peak_rss_mb"], tree_peak / 2**20), 1)
    return result


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def quiet_logs() -> None:
    """Children: the engine's structured logs off (they would dominate a short command)."""
    os.environ.setdefault("SMARTCITY_LOG_LEVEL", "WARNING")
