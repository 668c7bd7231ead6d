"""The look every report figure shares: fonts, colours, margins and legend placement, axes for
days and for clock time, limit lines, the "no data" panel, and the rule that missing values are
gaps. Plotly time axes get naive datetimes that are UTC (Plotly.js ignores offsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from reports.render import is_missing, parse_ts
from router.decision import LEVELS

TimeLike = str | datetime

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
LIMIT = "#dc2626"
"""Thresholds, SLAs and breaches are drawn in this red, always dashed."""
OK = "#16a34a"

LEVEL_ORDER: tuple[str, ...] = tuple(lv.value for lv in LEVELS)
LEVEL_COLORS: dict[str, str] = {
    "TRIVIAL": "#a5d8ff",
    "SIMPLE": "#4dabf7",
    "MODERATE": "#1c7ed6",
    "COMPLEX": "#f08c00",
    "EXPERT": "#c92a2a",
}
SEVERITY_COLORS: dict[str, str] = {"info": "#4dabf7", "warning": "#f59f00", "critical": "#e03131"}
SERIES_COLORS: tuple[str, ...] = (
    "#1c7ed6",
    "#f76707",
    "#2f9e44",
    "#9c36b5",
    "#e03131",
    "#0c8599",
    "#e8590c",
    "#5c940d",
    "#d6336c",
    "#3b5bdb",
    "#868e96",
)
WINDOW_FILL = "rgba(224, 49, 49, 0.12)"


def to_utc_naive(value: TimeLike) -> datetime:
    """Plotly.js ignores UTC offsets, so time axes get naive datetimes that *are* UTC."""
    return parse_ts(value).replace(tzinfo=None)


def number_or_gap(value: Any) -> float | None:
    """A plotted number, or None (drawn as a gap, never as zero) when the value is missing."""
    return None if is_missing(value) else float(value)


def styled(
    fig: go.Figure,
    *,
    title: str | None,
    height: int,
    ytitle: str | None = None,
    xtitle: str | None = None,
    legend: bool = True,
) -> go.Figure:
    top = 36 + (34 if title else 0) if legend else (46 if title else 16)
    fig.update_layout(
        template="plotly_white",
        height=height,
        # the toolbar stands upright in the right margin: lying across the top it covered
        # the legend whenever a reader hovered the chart to read it
        margin={"l": 64, "r": 40, "t": top, "b": 44},
        modebar={"orientation": "v", "bgcolor": "rgba(255,255,255,0.7)"},
        font={"family": FONT, "size": 12, "color": INK},
        showlegend=legend,
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "xanchor": "left",
            "x": 0,
            "title": {"text": ""},
        },
        hoverlabel={"namelength": -1},
        bargap=0.15,
    )
    if title:
        fig.update_layout(
            title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "font": {"size": 15}}
        )
    if ytitle is not None:
        fig.update_yaxes(title_text=ytitle)
    if xtitle is not None:
        fig.update_xaxes(title_text=xtitle)
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


def no_data(fig: go.Figure, message: str, *, size: int = 14, hide_axes: bool = True) -> go.Figure:
    """``message`` in the middle of the plot, muted; the axes hidden unless they still say
    something (an alert timeline keeps its rule rows)."""
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": size, "color": MUTED},
    )
    if hide_axes:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def empty_figure(message: str, *, title: str | None, height: int, legend: bool = True) -> go.Figure:
    """A figure that says there is nothing to plot, in the shared look (no empty axes)."""
    return styled(no_data(go.Figure(), message), title=title, height=height, legend=legend)


def limit_line(
    fig: go.Figure,
    y: float,
    label: str,
    *,
    row: int | None = None,
    col: int | None = None,
    position: str = "top left",
) -> None:
    kwargs: dict[str, Any] = {}
    if row is not None:
        kwargs = {"row": row, "col": col or 1}
    fig.add_hline(
        y=y,
        line={"color": LIMIT, "dash": "dash", "width": 1.5},
        annotation_text=label,
        annotation_position=position,
        annotation_font={"color": LIMIT, "size": 11},
        **kwargs,
    )


def day_axis(fig: go.Figure, **kwargs: Any) -> None:
    fig.update_xaxes(type="date", tickformat="%a<br>%d %b", dtick=86_400_000, tickangle=0, **kwargs)


def time_axis(fig: go.Figure, xs: Sequence[datetime]) -> None:
    """Day ticks for a multi-day series (one label per day), clock ticks for a shorter one."""
    if xs and max(xs) - min(xs) >= timedelta(days=2):
        first = min(xs).replace(hour=0, minute=0, second=0, microsecond=0)
        fig.update_xaxes(type="date", tickformat="%a %d %b", dtick=86_400_000, tick0=first)
    else:
        fig.update_xaxes(type="date", tickformat="%H:%M<br>%d %b")


def series_palette(n: int) -> list[str]:
    return [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(n)]
