"""The incident timeline (the drill postmortem's figure): several series stacked on one UTC time
axis, with shaded windows (a fault being active) and event markers (alert fired, OUTAGE BEGINS,
MITIGATED, ...) across every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.figures.style import (
    INK,
    WINDOW_FILL,
    TimeLike,
    limit_line,
    no_data,
    number_or_gap,
    series_palette,
    styled,
    to_utc_naive,
)


def timeline_figure(
    series: Mapping[str, Sequence[tuple[TimeLike, float | None]]],
    windows: Iterable[tuple[TimeLike, TimeLike | None, str]] = (),
    markers: Iterable[tuple[TimeLike, str]] = (),
    *,
    thresholds: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
    title: str | None = None,
    row_height: int = 150,
) -> go.Figure:
    """Several series stacked on ONE shared UTC time axis, with shaded windows and markers.

    Built for incident timelines (the drill postmortem): ``series`` maps a name to
    ``[(ts, value), …]`` (value None = gap); each series gets its own row, labelled with its
    name, a y-axis titled ``units[name]`` when given, and a dashed limit line when
    ``thresholds`` has the name.
    ``windows`` are ``(start, end, label)`` spans (e.g. a fault being active; ``end`` None runs
    to the last timestamp) shaded across every row; ``markers`` are ``(ts, label)`` events
    (alert fired, OUTAGE BEGINS, MITIGATED, …) drawn as vertical lines across every row.
    """
    names = list(series)
    n = max(1, len(names))
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=min(0.06, 0.3 / n))
    units = units or {}
    thresholds = thresholds or {}
    all_x: list[datetime] = []
    for i, (name, color) in enumerate(zip(names, series_palette(len(names)), strict=True), start=1):
        pts = sorted(
            ((to_utc_naive(t), number_or_gap(v)) for t, v in series[name]), key=lambda p: p[0]
        )
        xs = [p[0] for p in pts]
        all_x += xs
        fig.add_scatter(
            x=xs,
            y=[p[1] for p in pts],
            mode="lines+markers" if len(pts) <= 60 else "lines",
            name=name,
            line={"color": color, "width": 1.8},
            marker={"size": 4},
            hovertemplate=f"{name}: %{{y:,.4g}}<extra>%{{x|%H:%M:%S}}</extra>",
            row=i,
            col=1,
        )
        if name in units:
            fig.update_yaxes(title_text=units[name], row=i, col=1)
        # The series name sits inside its row: rotated y titles of thin rows would overlap.
        fig.add_annotation(
            text=f"<b>{name}</b>",
            x=0.005,
            y=1,
            xref="x domain" if i == 1 else f"x{i} domain",
            yref="y domain" if i == 1 else f"y{i} domain",
            xanchor="left",
            yanchor="top",
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 12, "color": color},
        )
        if name in thresholds:
            limit_line(
                fig, thresholds[name], f"limit {thresholds[name]:g}", row=i, position="top right"
            )
    last = max(all_x) if all_x else None
    for start, end, label in windows:
        x0 = to_utc_naive(start)
        x1 = to_utc_naive(end) if end is not None else (last or x0)
        _mark_across_rows(fig, x0, x1, label, label_at=0, label_color="#c92a2a",
                          type="rect", fillcolor=WINDOW_FILL, line={"width": 0}, layer="below")  # fmt: skip
    marker_list = sorted(
        ((to_utc_naive(t), str(label)) for t, label in markers), key=lambda m: m[0]
    )
    # Labels go on the lowest row where they do not run into the previous label; the width of
    # a label in time is estimated for a narrow (about 560 px) plot so they stay apart at 800 px.
    first = min(all_x) if all_x else None
    span = (last - first).total_seconds() if first is not None and last is not None else 0.0
    row_ends: list[datetime] = []
    rows_of: list[int] = []
    for ts, label in marker_list:
        width = timedelta(seconds=span * (len(label) * 6.5 + 8) / 560) if span else timedelta(0)
        row = next((r for r, end in enumerate(row_ends) if end <= ts), len(row_ends))
        if row == len(row_ends):
            row_ends.append(ts + width)
        else:
            row_ends[row] = ts + width
        rows_of.append(row)
    for (ts, label), row in zip(marker_list, rows_of, strict=True):
        _mark_across_rows(fig, ts, ts, label, label_at=1, label_color=INK, label_shift=2 + 16 * row,
                          type="line", line={"color": INK, "dash": "dot", "width": 1.2})  # fmt: skip
    if not names:
        no_data(fig, "no series")
    top_pad = 20 + 16 * len(row_ends)
    styled(fig, title=title, height=80 + row_height * n, legend=False)
    fig.update_layout(margin={"t": top_pad + (40 if title else 10)}, hovermode="x unified")
    fig.update_xaxes(type="date", tickformat="%H:%M<br>%d %b")
    return fig


def _mark_across_rows(
    fig: go.Figure,
    x0: datetime,
    x1: datetime,
    label: str,
    *,
    label_at: float,
    label_color: str,
    label_shift: int = 0,
    **shape: Any,
) -> None:
    """A shape over every row from ``x0`` to ``x1`` (a shaded window, or a line when they are
    equal), labelled at ``x0``: at the bottom (``label_at`` 0) or on top (1, raised by
    ``label_shift`` px so labels that would touch stack upwards)."""
    fig.add_shape(xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, **shape)
    fig.add_annotation(
        x=x0,
        y=label_at,
        xref="x",
        yref="paper",
        text=label,
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        yshift=label_shift,
        font={"size": 11, "color": label_color},
    )
