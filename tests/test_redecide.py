"""router/redecide.py must make exactly the decisions the engine makes under another config,
or calibration's promises drift from what a rerun delivers."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml

from data.generate import generate_corpus
from router.config import load_config
from router.engine import Router
from router.redecide import redecide
from router.toggle import resolve_toggle

COMPARED = [
    "complexity_level",
    "borderline",
    "upscaled",
    "model",
    "model_tier",
    "cost_estimate_usd",
    "latency_estimate_ms",
    "tokens_estimate",
    "confidence_complexity",
    "confidence_model_fit",
    "confidence_execution_fit",
    "confidence_overall",
]


@pytest.mark.parametrize(
    ("levels", "band", "semantic"),
    [
        ({"SIMPLE": 0.1, "MODERATE": 0.25, "COMPLEX": 0.45, "EXPERT": 0.7}, 0.01, False),
        ({"SIMPLE": 0.3, "MODERATE": 0.45, "COMPLEX": 0.65, "EXPERT": 0.9}, 0.05, False),
        pytest.param(
            {"SIMPLE": 0.1, "MODERATE": 0.25, "COMPLEX": 0.45, "EXPERT": 0.7},
            0.01,
            True,
            marks=pytest.mark.slow,
            id="hybrid",
        ),
    ],
)
def test_redecide_equals_routing_again_under_the_candidate_config(tmp_path, levels, band, semantic):
    """The candidate is written by calibration's own writer (thresholds, band, pinned centres)."""
    from telemetry.calibration import LEVEL_NAMES, Point, candidate_yaml

    texts = generate_corpus(800, seed=11, days=1, start="2026-11-16").column("text").to_pylist()
    ts = [datetime(2026, 11, 16, tzinfo=UTC)] * len(texts)
    old_cfg = load_config(None)
    thresholds = [0.0] + [levels[n] for n in LEVEL_NAMES[1:]]
    point = Point(thresholds, band, 0.0, 0.0, None, None, 0.0, 0.0, True)
    p = tmp_path / "new.yaml"
    p.write_text(yaml.safe_dump(candidate_yaml(old_cfg, None, point, p), sort_keys=False))
    new_cfg = load_config(p)
    toggle = resolve_toggle(None)
    old = Router(old_cfg, semantic=semantic, hash_key=b"k", toggle=toggle)
    new = Router(new_cfg, semantic=semantic, hash_key=b"k", toggle=toggle)
    a = old.route_batch(texts, ts=ts, run_id="r").to_pandas()
    b = new.route_batch(texts, ts=ts, run_id="r").to_pandas()
    got = redecide(a, old_cfg, new_cfg)
    assert (got["complexity_level"] != a["complexity_level"]).any()  # the configs differ
    assert (a["complexity_score"] == b["complexity_score"]).all()  # the score scale is pinned
    pd.testing.assert_frame_equal(
        got[COMPARED].reset_index(drop=True).astype(b[COMPARED].dtypes.to_dict()),
        b[COMPARED].reset_index(drop=True),
        check_exact=False,
        rtol=1e-12,
        atol=1e-9,
    )
