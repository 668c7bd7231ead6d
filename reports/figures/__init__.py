"""Plotly figure builders: plain data in, ``go.Figure`` out, no I/O.

Every builder takes JSON-shaped data (lists of dicts, dicts of lists, ISO-8601 strings or
datetimes) so the pilot report, the drill postmortem and anything later can share them without
pandas. Missing values (None / NaN) are drawn as gaps, never as zeros. Time axes are UTC.
Turn a figure into page HTML with ``reports.assets.figure_html``.

Modules: ``style`` (the shared look), ``pilot`` (the pilot report's figures), ``timeline`` (the
drill postmortem's incident timeline). Import the builders from here.

Builders: ``traffic_per_hour``, ``mix_per_day`` (and ``routing_mix_per_day``,
``model_mix_per_day``), ``rates_vs_thresholds``, ``confidence_distribution``,
``confidence_drift``, ``cost_per_day``, ``latency_p95``, ``alert_timeline``,
``matrix_heatmap`` (and ``confusion_heatmap``, ``transition_heatmap``) and the general
``timeline_figure`` (several series, shaded fault windows and event markers on one time axis).
"""

from __future__ import annotations

from reports.figures.pilot import (
    alert_timeline,
    confidence_distribution,
    confidence_drift,
    confusion_heatmap,
    cost_per_day,
    latency_p95,
    matrix_heatmap,
    mix_per_day,
    model_mix_per_day,
    rates_vs_thresholds,
    routing_mix_per_day,
    traffic_per_hour,
    transition_heatmap,
)
from reports.figures.style import to_utc_naive
from reports.figures.timeline import timeline_figure

__all__ = [
    "alert_timeline",
    "confidence_distribution",
    "confidence_drift",
    "confusion_heatmap",
    "cost_per_day",
    "latency_p95",
    "matrix_heatmap",
    "mix_per_day",
    "model_mix_per_day",
    "rates_vs_thresholds",
    "routing_mix_per_day",
    "timeline_figure",
    "to_utc_naive",
    "traffic_per_hour",
    "transition_heatmap",
]
