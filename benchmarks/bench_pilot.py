"""End-to-end pilot week on a generated corpus: wall time per stage and peak RSS."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def run(n: int = 1_000_000, semantic: bool = False) -> dict:
    import os

    from data.generate import generate_corpus, write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        t0 = time.perf_counter()
        corpus = write_corpus(
            generate_corpus(n, seed=42, days=7, start="2026-11-16", bad_rows=0.001),
            Path(tmp) / "corpus.parquet",
        )
        generate_s = time.perf_counter() - t0
        from prefect.testing.utilities import prefect_test_harness

        from flows.pilot import pilot_week

        with prefect_test_harness(server_startup_timeout=60):
            t0 = time.perf_counter()
            outcome = pilot_week(
                corpus=str(corpus),
                days=7,
                out=str(Path(tmp) / "out"),
                db=f"sqlite:///{tmp}/t.db",
                semantic=semantic,
            )
            wall = time.perf_counter() - t0
        evidence = json.loads(Path(outcome["evidence"]).read_text())
    return {
        "queries": n,
        "semantic": semantic,
        "generate_corpus_s": round(generate_s, 2),
        "pilot_wall_s": round(wall, 2),
        "stages_s": evidence["timings"],
        "verdict": outcome["verdict"],
        "decisions_stored": evidence["telemetry"]["rows"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    semantic = len(sys.argv) > 2 and sys.argv[2] == "hybrid"
    print(json.dumps(run(n, semantic), indent=1))
