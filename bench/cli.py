"""`python -m bench`: run the scenarios, write BENCHMARKS.md and bench/results.json."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.core import SCENARIOS, Context, Row
from bench.databases import Database, PostgreSQL, SQLite, postgres_url

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    import bench.scenarios  # noqa: F401 - registers the scenarios

    names = ", ".join(sorted(SCENARIOS))
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 runs per figure, smaller cohort and growth (< 2 min)")
    ap.add_argument("--only", default="",
                    help=f"comma-separated scenarios to run (of: {names}); the others keep "
                         "their last results in the output")
    ap.add_argument("--postgres-url", default=None,
                    help="PostgreSQL to measure too (default: $SMARTCITY_BENCH_POSTGRES_URL "
                         "or $SMARTCITY_TEST_POSTGRES_URL)")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only")
    ap.add_argument("--runs", type=int, default=None,
                    help="timed runs per figure (default 3 quick, 5 full)")
    ap.add_argument("--out", default=None,
                    help="directory for BENCHMARKS.md and results.json (default: "
                         "BENCHMARKS.md at the repository root, bench/results.json)")
    ap.add_argument("--workdir", default=None,
                    help="where the SQLite files go (default: the system temp dir)")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: write BENCHMARKS.md again from results.json "
                         "(after editing bench/findings.md)")
    args = ap.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {names}")
    args.scenarios = chosen or sorted(SCENARIOS, key=lambda s: SCENARIOS[s].order)
    return args


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def git_revision() -> str | None:
    """The checked-out commit (read only), and whether the tree had changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10).stdout
        return (rev + ("+changes" if dirty.strip() else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    runs = args.runs or (3 if args.quick else 5)
    out_dir = Path(args.out).resolve() if args.out else None
    out_md = out_dir / "BENCHMARKS.md" if out_dir else ROOT / "BENCHMARKS.md"
    out_json = out_dir / "results.json" if out_dir else ROOT / "bench" / "results.json"
    if args.render:
        report.write(report.load(out_json), out_md, out_json)
        print(f"wrote {out_md} from {out_json}")
        return 0

    databases: list[Database] = [SQLite(args.workdir)]
    described = [databases[0].describe()]
    url = None if args.no_postgres else postgres_url(args.postgres_url)
    if url:
        pg = PostgreSQL(url)
        why = pg.check()
        if why is None:
            databases.append(pg)
            described.append(pg.describe())
        else:
            described.append({"name": "PostgreSQL", "unavailable": f"no answer: {why}"})
            print(f"PostgreSQL not measured: {why}", file=sys.stderr)
    else:
        described.append({"name": "PostgreSQL", "unavailable":
                          "no URL given (--postgres-url or SMARTCITY_BENCH_POSTGRES_URL)"})

    from bench import peer_eventsourcing

    ctx = Context(databases=databases, quick=args.quick, runs=runs,
                  log=lambda msg: print(msg, flush=True))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "databases": described,
        "peer": peer_eventsourcing.label() if peer_eventsourcing.VERSION
        else "eventsourcing: not installed", "scenarios": {},
    }
    git = git_revision()
    try:
        for sid in args.scenarios:
            sc = SCENARIOS[sid]
            print(f"{sc.title} ({'quick' if args.quick else 'full'}, {runs} runs per figure)",
                  flush=True)
            t0 = time.perf_counter()
            rows: list[Row] = sc.fn(ctx)
            for row in rows:
                row.evaluate()
            results["scenarios"][sid] = {
                "title": sc.title, "order": sc.order, "mode": "quick" if args.quick else "full",
                "runs": runs, "generated": results["generated"], "git": git,
                "seconds": round(time.perf_counter() - t0, 1),
                "rows": [r.to_json() for r in rows],
            }
    finally:
        for db in databases:
            db.close()
    merged = report.merge(report.load(out_json), results)
    report.write(merged, out_md, out_json)
    took = time.perf_counter() - started
    print(f"wrote {out_md} and {out_json} in {took:.0f} s")
    missed = [r for s in results["scenarios"].values() for r in s["rows"] if r["met"] is False]
    for r in missed:
        print(f"target missed: {r['scenario']}, {r['case']}, {r['database']}: {r['target']}")
    return 0
