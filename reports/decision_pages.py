"""The two pages of the pilot lead's loop after a verdict: the calibration sweep (cost against
borderline, downgrade and overpay rates, current and proposed config marked) and a run-against-
run comparison (per-metric judgement, score, noise floor)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from reports.assets import ensure_plotly_js, figure_html, plotly_src, relative_root
from reports.render import render_to, write_atomic


def _scatter(
    points: list[dict], x: str, x_title: str, current: dict, proposed: dict | None, div: str
):
    import plotly.graph_objects as go

    pts = [p for p in points if p.get(x) is not None]
    feas = [p for p in pts if p["feasible"]]
    infeas = [p for p in pts if not p["feasible"]]
    fig = go.Figure()
    for group, name, colour in (
        (infeas, "misses a criterion", "#c8ccd4"),
        (feas, "meets every critical criterion", "#2f855a"),
    ):
        fig.add_trace(
            go.Scattergl(
                x=[p[x] * 100 for p in group],
                y=[p["cost_usd"] for p in group],
                mode="markers",
                name=name,
                marker={"size": 5, "color": colour},
                hovertemplate=f"{x_title} %{{x:.2f}} %<br>cost $%{{y:.4f}}<extra></extra>",
            )
        )
    for pt, name, colour, sym in (
        (current, "current config", "#c53030", "x"),
        (proposed, "proposed", "#2b6cb0", "star"),
    ):
        if pt is not None and pt.get(x) is not None:
            fig.add_trace(
                go.Scatter(
                    x=[pt[x] * 100],
                    y=[pt["cost_usd"]],
                    mode="markers+text",
                    name=name,
                    text=[name],
                    textposition="top center",
                    marker={"size": 14, "color": colour, "symbol": sym},
                )
            )
    fig.update_layout(
        xaxis_title=f"{x_title} (%)",
        yaxis_title="estimated cost over the run (USD)",
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure_html(fig, div, height=420)


def build_calibration_page(result: dict, out_root: Path, folder: str) -> Path:
    out_root = Path(out_root)
    page = out_root / folder / "calibration.html"
    ensure_plotly_js(out_root)
    figs = {
        "borderline": _scatter(
            result["points"],
            "borderline_rate",
            "borderline rate",
            result["current"],
            result["proposed"],
            "cal-borderline",
        ),
    }
    if result["labelled"]:
        figs["downgrade"] = _scatter(
            result["points"],
            "downgrade_rate",
            "downgrade rate",
            result["current"],
            result["proposed"],
            "cal-downgrade",
        )
        figs["overpay"] = _scatter(
            result["points"],
            "overpay_rate",
            "overpay rate",
            result["current"],
            result["proposed"],
            "cal-overpay",
        )
    write_atomic(out_root / folder / "calibration.json", json.dumps(result, indent=1))
    return render_to(
        page,
        "calibration.html.j2",
        r=result,
        figs=figs,
        root=relative_root(page, out_root),
        plotly_src=plotly_src(page, out_root),
        generated_at=datetime.now(UTC),
        run_id=result["run_id"],
    )


def build_run_comparison_page(result: dict, out_root: Path, folder: str) -> Path:
    out_root = Path(out_root)
    page = out_root / folder / "compare.html"
    write_atomic(out_root / folder / "compare.json", json.dumps(result, indent=1))
    return render_to(
        page,
        "run_compare.html.j2",
        r=result,
        root=relative_root(page, out_root),
        generated_at=datetime.now(UTC),
    )
