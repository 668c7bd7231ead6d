"""`make bench`: each benchmark in its own process (so peak RSS is its own), a table, and JSON
under benchmarks/results/. Targets are the issue's, on this 2-core machine; a miss is reported,
not hidden.

BENCH_QUICK=1 shrinks every size for a smoke run. ``--corpus PATH`` (or BENCH_CORPUS=PATH) adds the
routing-quality table on that labelled JSONL corpus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
QUICK = os.environ.get("BENCH_QUICK") == "1"


def _size(quick: int, full: int) -> int:
    return quick if QUICK else full


# name, module under benchmarks/, the arguments of its run() as Python source
BENCHES = [
    ("router", "bench_router", f"{_size(20_000, 200_000)}, {_size(2_000, 20_000)}"),
    # only with --corpus: the same speed measures on real prompts
    ("router_corpus", "bench_router", "corpus=os.environ['BENCH_CORPUS']"),
    ("telemetry", "bench_telemetry", f"{_size(20_000, 200_000)}"),
    ("quality", "bench_quality", ""),
    # only with --corpus PATH (or BENCH_CORPUS): any labelled JSONL
    ("quality_corpus", "bench_quality", "os.environ['BENCH_CORPUS']"),
    ("gx", "bench_gx", ""),
    ("pilot_rule_only", "bench_pilot", f"{_size(50_000, 1_000_000)}, False"),
    ("pilot_hybrid", "bench_pilot", f"{_size(20_000, 200_000)}, True"),
    ("drills", "bench_drills", ""),
    # 1 vs 2 Dask workers (PostgreSQL store), hybrid cold and rule-only
    ("cluster", "bench_cluster", f"{_size(2_000, 4_000)}, {_size(100_000, 1_000_000)}"),
    ("live", "bench_live", f"{_size(5_000, 20_000)}"),
]


def _snippet(module: str, args: str) -> str:
    """Python source that runs one benchmark and prints its JSON dict."""
    return f"import json, os; from benchmarks.{module} import run; print(json.dumps(run({args})))"


TARGETS = {
    ("router", "rule_only_decisions_per_s"): (">=", 200_000),
    ("router", "hybrid_cold_vs_bare_encode"): (">=", 4),
    ("router_corpus", "hybrid_cold_vs_bare_encode"): (">=", 4),
    ("router", "hybrid_cached_decisions_per_s"): (">=", 100_000),
    ("router", "peak_rss_mb"): ("<=", 1_536),
    ("telemetry", "sqlite_insert_rows_per_s"): (">=", 100_000),
    ("telemetry", "postgres_insert_rows_per_s"): (">=", 50_000),
    ("pilot_rule_only", "pilot_wall_s"): ("<=", 90),
    ("pilot_rule_only", "peak_rss_mb"): ("<=", 2_048),
    ("live", "http_batched_vs_in_process"): (">=", 0.5),
    ("live", "single_p99_ms_at_50_rps"): ("<=", 20),
    ("cluster", "hybrid_speedup_2_workers"): (">=", 1.7),
}


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    RESULTS.mkdir(parents=True, exist_ok=True)
    args = sys.argv[1:]
    if "--corpus" in args:
        i = args.index("--corpus")
        if i + 1 >= len(args):
            console.print("error: --corpus needs a path")
            return 1
        os.environ["BENCH_CORPUS"] = args[i + 1]
        del args[i : i + 2]
    only = set(args)
    table = Table("benchmark", "measure", "value", "target", title="make bench")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    failed = False
    for name, module, args in BENCHES:
        code = _snippet(module, args)
        if only and name not in only:
            continue
        if name.endswith("_corpus") and not os.environ.get("BENCH_CORPUS"):
            continue
        console.print(f"running {name} ...")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).parent.parent,
        )
        if proc.returncode != 0:
            failed = True
            console.print(f"[red]{name} failed[/red]\n{proc.stderr[-3000:]}")
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        (RESULTS / f"{name}-{stamp}.json").write_text(json.dumps(result, indent=1))
        if name.startswith("quality"):
            from router.quality import format_report

            for mode in ("hybrid", "rules"):
                console.print(format_report(f"{result['corpus']} / {mode}", result[mode]))
                result[mode].pop("per_source", None)  # printed above; too wide for the table
        flat: dict = {}
        _flatten("", result, flat)
        for key, value in flat.items():
            target = TARGETS.get((name, key))
            mark = ""
            if target and isinstance(value, int | float):
                op, goal = target
                ok = value >= goal if op == ">=" else value <= goal
                mark = f"{op} {goal:,} " + ("[green]met[/green]" if ok else "[red]MISSED[/red]")
            shown = f"{value:,}" if isinstance(value, int | float) else str(value)
            table.add_row(name, key, shown, mark)
    console.print(table)
    console.print(f"results: {RESULTS}/")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
