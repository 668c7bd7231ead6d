"""Wall time of every built-in drill at full size: 30 virtual minutes at 20 queries per second
(36,000 queries through the rule-only router, the execution plane and a SQLite telemetry store).

Target on the 2-core dev box: <= 15 s per drill. ``run()`` returns numbers and prints nothing;
``python -m benchmarks.bench_drills`` prints them. Each drill also has to hold every guarantee at
full size, or the number is not worth having: a failed guarantee raises.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 15.0


def run(names: list[str] | None = None) -> dict[str, Any]:
    from drills.runner import run_scenario
    from drills.scenario import builtin_scenarios

    for noisy in ("router", "telemetry"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    names = names or list(builtin_scenarios())
    out: dict[str, Any] = {}
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-drills-") as tmp:
        root = Path(tmp)
        for name in names:
            start = time.perf_counter()
            result = run_scenario(
                name,
                db=f"sqlite:///{root / name / 'telemetry.db'}",
                out=root / "out",
                spool_dir=root / name / "spool",
            )
            seconds = time.perf_counter() - start
            j = result.journal
            if not result.passed:
                failed = [f"{g.id}: {g.actual_text}" for g in j.guarantees if g.verdict != "passed"]
                raise RuntimeError(f"{name} at full size: {j.status}; {failed or j.error}")
            total += seconds
            out[f"{name}_wall_s"] = round(seconds, 2)
            out[f"{name}_queries"] = j.impact.queries
    out["suite_wall_s"] = round(total, 2)
    out["slowest_wall_s"] = max(
        v for k, v in out.items() if k.endswith("_wall_s") and k != "suite_wall_s"
    )
    out["target_s"] = TARGET_S
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for key, value in run(sys.argv[1:] or None).items():
        print(f"{key:48} {value}")
