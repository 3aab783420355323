"""BENCHMARKS.md and results.json from the rows of a run (merged with earlier scenarios)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.core import Figure, Row

HERE = Path(__file__).resolve().parent
FINDINGS = HERE / "findings.md"
COLUMNS = ("Scenario", "Case", "Database", "Ours", "Peer", "Limit", "Ratios", "Target", "Met?",
           "Commit mode")


def load(path: Path) -> dict[str, Any]:
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
    return {}


def merge(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Scenarios of this run replace the same scenarios of an earlier run; others stay."""
    scenarios = dict(previous.get("scenarios") or {})
    scenarios.update(current["scenarios"])
    return {**current, "scenarios": dict(sorted(scenarios.items(),
                                                key=lambda kv: kv[1].get("order", 99)))}


def _num(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(fig: Figure | None) -> str:
    if fig is None:
        return "-"
    if fig.unavailable:
        return f"{fig.system}: {fig.unavailable}"
    if fig.error:
        return f"{fig.system}: failed (see results.json)"
    rss = f", {fig.peak_rss_mb:.0f} MB peak RSS" if fig.peak_rss_mb else ""
    return f"**{_num(fig.value)} {fig.unit}**<br>{fig.system}{rss}"


def ratios(row: Row) -> str:
    parts = []
    if row.vs_peer is not None:
        parts.append(f"{row.vs_peer:.2f}x peer")
    if row.vs_limit is not None:
        parts.append(f"{row.vs_limit:.2f}x limit")
    parts += [f"{k}: {v:.2f}" for k, v in row.ratios.items()]
    return "<br>".join(parts) or "-"


def modes(row: Row) -> str:
    seen: dict[str, list[str]] = {}
    for name, fig in (("ours", row.ours), ("peer", row.peer), ("limit", row.limit)):
        if fig is not None and fig.commit_mode:
            seen.setdefault(fig.commit_mode, []).append(name)
    if len(seen) <= 1:
        return next(iter(seen), "-")
    return "<br>".join(f"{mode} ({', '.join(who)})" for mode, who in seen.items())


def met(row: Row) -> str:
    return {True: "yes", False: "**no**", None: "-"}[row.met]


def table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        values = (r.scenario, r.case, r.database, cell(r.ours), cell(r.peer), cell(r.limit),
                  ratios(r), r.target.text if r.target else "-", met(r), modes(r))
        lines.append("| " + " | ".join(v.replace("|", "/") for v in values) + " |")
    return lines


def details(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        out.append(f"- **{r.scenario}, {r.case}, {r.database}**")
        for name, fig in (("ours", r.ours), ("peer", r.peer), ("limit", r.limit)):
            if fig is None or not fig.runs:
                continue
            spread = f"{min(fig.runs):,.1f} to {max(fig.runs):,.1f}" if len(fig.runs) > 1 else ""
            extra = {k: v for k, v in fig.extra.items()
                     if k not in ("sizes",) and not isinstance(v, dict)}
            bits = ", ".join(f"{k} {_short(v)}" for k, v in extra.items())
            out.append(f"  - {name} ({fig.system}): median {fig.value:,.2f} {fig.unit} of "
                       f"{len(fig.runs)} runs{' (' + spread + ')' if spread else ''}"
                       f"{'; ' + bits if bits else ''}")
        if r.notes:
            out.append(f"  - {r.notes}")
    return out


def _short(value: Any) -> str:
    if isinstance(value, list):
        if value and all(isinstance(v, int | float) for v in value):
            return "[" + ", ".join(_num(float(v)) for v in value) + "]"
        return str(value)
    if isinstance(value, float):
        return _num(value)
    return str(value)


def render(results: dict[str, Any]) -> str:
    rows = [Row.from_json(r) for s in results["scenarios"].values() for r in s["rows"]]
    m = results.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (see `bench/`); the figures below are from one run of "
        "each scenario, all figures of a scenario measured in the same run on the same "
        "machine. Absolute numbers on a shared machine are noise: read the ratios.",
        "",
        "## How to run",
        "",
        "```",
        "pip install -e '.[bench]'          # eventsourcing (the peer), psutil, pyinstrument, py-spy",
        "python -m bench                    # every scenario, SQLite and (when set) PostgreSQL",
        "python -m bench --quick            # CI-sized smoke run, under 2 minutes",
        "python -m bench --only append,replay --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "```",
        "",
        "PostgreSQL comes from `--postgres-url` or `SMARTCITY_BENCH_POSTGRES_URL` / "
        "`SMARTCITY_TEST_POSTGRES_URL`; each measurement runs in a new schema, dropped after. "
        "Each SQLite measurement gets a new database file. Each figure is the median of "
        "several runs (3 with `--quick`, 5 otherwise) inside its own spawned process, whose "
        "peak RSS is the figure's peak RSS (so memory is per measurement, never cumulative); "
        "where the measurement starts processes (verify's workers, Prefect's server), the "
        "figure is the larger of that and the peak PSS summed over the process and its "
        "children, sampled every 0.25 s (PSS counts a page they share once). "
        "`--only` re-runs some scenarios and keeps the others' last results.",
        "",
        "## Machine",
        "",
        f"- {m.get('cpus', '?')} CPUs ({m.get('cpu', '?')}), {m.get('memory_gb', '?')} GB, "
        f"Python {m.get('python', '?')}, {m.get('platform', '?')}",
    ]
    for db in results.get("databases", []):
        if db.get("name") == "SQLite":
            lines.append(f"- SQLite {db.get('version')} (files on the local disk; the engine's "
                         "WAL + synchronous=FULL)")
        elif db.get("name") == "PostgreSQL":
            if db.get("unavailable"):
                lines.append(f"- PostgreSQL: not measured ({db['unavailable']})")
            else:
                lines.append(f"- {db.get('version', 'PostgreSQL')}; synchronous_commit="
                             f"{db.get('synchronous_commit')}, fsync={db.get('fsync')}, "
                             f"wal_sync_method={db.get('wal_sync_method')}")
    lines.append(f"- Peer: {results.get('peer', 'eventsourcing: not installed')}")
    lines += ["", "## Results", ""]
    for sid, s in results["scenarios"].items():
        lines.append(f"- {s['title']}: {s['mode']} run of {s['generated']}, "
                     f"{s['runs']} runs per figure, {s.get('seconds', 0):.0f} s"
                     + (f" (git {s['git']})" if s.get("git") else ""))
    lines += ["", *table(rows), "",
              "Ratios are how many times better our figure is (above 1: ours is faster), "
              "whatever the unit: events/s divided, times inverted. \"Peer\" is the "
              "eventsourcing library doing the same work; \"limit\" is what the database "
              "does with bare rows of the same size and table shape. `-` under Met? means "
              "there is nothing to compare against in this run (a peer not installed, a "
              "quick run's smaller cohort).", ""]
    missed = [r for r in rows if r.met is False]
    if missed:
        lines += ["### Targets missed in this run", ""]
        lines += [f"- {r.scenario}, {r.case}, {r.database}: {r.target.text if r.target else ''}"
                  f" ({ratios(r).replace('<br>', '; ')})" for r in missed]
        lines.append("")
    lines += ["## Details", "", *details(rows), ""]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines)


def write(results: dict[str, Any], out_md: Path, out_json: Path) -> None:
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(render(results) + "\n", encoding="utf-8")


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
