"""The pilot report's figures: traffic, routing and model mix, rates against thresholds,
confidence distribution and drift, cost, latency, alert firings and level matrices. Plain data in
(lists of dicts from the evidence document), ``go.Figure`` out, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from reports.figures.style import (
    INK,
    LEVEL_COLORS,
    LEVEL_ORDER,
    LIMIT,
    MUTED,
    SERIES_COLORS,
    SEVERITY_COLORS,
    TimeLike,
    day_axis,
    empty_figure,
    limit_line,
    no_data,
    number_or_gap,
    series_palette,
    styled,
    time_axis,
    to_utc_naive,
)
from reports.render import is_missing, parse_ts


def traffic_per_hour(
    hourly: Sequence[Mapping[str, Any]],
    *,
    ts_key: str = "bucket",
    value_key: str = "queries",
    title: str | None = None,
) -> go.Figure:
    """Queries per hour: the traffic shape the week was replayed with (daily and weekly cycle)."""
    if not hourly:
        return empty_figure("no hourly metrics", title=title, height=300, legend=False)
    fig = go.Figure()
    x, y = _series(hourly, ts_key, value_key)
    fig.add_bar(
        x=x,
        y=y,
        name="queries",
        marker_color=SERIES_COLORS[0],
        hovertemplate="%{x|%a %d %b %H:00} UTC<br>%{y:,} queries<extra></extra>",
    )
    fig.update_layout(bargap=0.05)
    styled(fig, title=title, height=320, ytitle="queries per hour", legend=False)
    time_axis(fig, x)
    return fig


def _series(
    rows: Sequence[Mapping[str, Any]], ts_key: str, value_key: str
) -> tuple[list[datetime], list[float | None]]:
    """One column of bucket rows on a UTC time axis; a missing value is a gap."""
    return [to_utc_naive(r[ts_key]) for r in rows], [number_or_gap(r.get(value_key)) for r in rows]


def _mark_over(
    fig: go.Figure,
    x: Sequence[datetime],
    y: Sequence[float | None],
    limit: float,
    name: str,
    hover: str,
) -> None:
    """Red crosses on the points above ``limit``, so a breach shows even in a week-long series."""
    over = [(xi, yi) for xi, yi in zip(x, y, strict=True) if yi is not None and yi > limit]
    if over:
        fig.add_scatter(
            x=[o[0] for o in over],
            y=[o[1] for o in over],
            mode="markers",
            name=name,
            marker={"color": LIMIT, "size": 7, "symbol": "x"},
            hovertemplate=hover,
        )


def mix_per_day(
    rows: Sequence[Mapping[str, Any]],
    category: str,
    *,
    day_key: str = "day",
    count_key: str = "count",
    order: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    top: int | None = None,
    share: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Stacked bars per day of ``rows`` grouped by ``category`` (e.g. level or model).

    ``order`` fixes the stacking order (otherwise largest total first); with ``top`` the
    smallest categories are folded into "other" so the legend stays readable; ``share`` plots
    each day's shares instead of counts.
    """
    counts: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for r in rows:
        day = str(r[day_key])[:10]
        cat = str(r[category])
        value = float(r[count_key] or 0)
        counts.setdefault(cat, {}).setdefault(day, 0.0)
        counts[cat][day] += value
        totals[day] = totals.get(day, 0.0) + value
    if not counts:
        return empty_figure(f"no {category} data", title=title, height=320, legend=False)
    fig = go.Figure()
    days = sorted(totals)
    by_total = sorted(counts, key=lambda c: -sum(counts[c].values()))
    cats = [c for c in order if c in counts] if order else []
    cats += [c for c in by_total if c not in cats]
    if top is not None and len(cats) > top:
        keep, rest = cats[: top - 1], cats[top - 1 :]
        other = {d: sum(counts[c].get(d, 0.0) for c in rest) for d in days}
        counts = {c: counts[c] for c in keep} | {"other": other}
        cats = [*keep, "other"]
    palette = dict(zip(cats, series_palette(len(cats)), strict=True))
    palette.update(colors or {})
    palette.setdefault("other", "#adb5bd")
    for cat in cats:
        ys = [counts[cat].get(d, 0.0) for d in days]
        if share:
            ys = [y / totals[d] if totals[d] else None for y, d in zip(ys, days, strict=True)]
        fig.add_bar(
            x=days,
            y=ys,
            name=cat,
            marker_color=palette.get(cat),
            hovertemplate=f"{cat}: "
            + ("%{y:.1%}" if share else "%{y:,.0f}")
            + "<extra>%{x|%a %d %b}</extra>",
        )
    fig.update_layout(barmode="stack")
    styled(
        fig,
        title=title,
        height=360,
        ytitle="share of queries" if share else "queries per day",
    )
    day_axis(fig)
    if share:
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig


def routing_mix_per_day(rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> go.Figure:
    """Complexity levels per day, stacked TRIVIAL (bottom) to EXPERT (top)."""
    return mix_per_day(rows, "level", order=LEVEL_ORDER, colors=LEVEL_COLORS, **kwargs)


def model_mix_per_day(rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> go.Figure:
    """Chosen model per day; the eight busiest models and "other"."""
    kwargs.setdefault("top", 9)
    return mix_per_day(rows, "model", **kwargs)


def rates_vs_thresholds(
    points: Sequence[Mapping[str, Any]],
    thresholds: Mapping[str, float | None],
    *,
    labels: Mapping[str, str] | None = None,
    ts_key: str = "bucket",
    count_key: str = "queries",
    min_count: int = 0,
    daily: Sequence[Mapping[str, Any]] | None = None,
    title: str | None = None,
) -> go.Figure:
    """One line per rate (keys of ``thresholds``) over time, each with its threshold dashed.

    Rates are shares (0..1). Points above the threshold are marked so a breach is visible even
    in a week-long hourly series. Buckets with fewer than ``min_count`` queries (a quiet night
    hour where 3 of 4 queries is "75 %") are left out of the line and shown as faint dots, the
    same way the alert rules treat them (their ``min_queries``). ``daily`` rows (same keys,
    day buckets) add each day's rate as a wide step line: the level a weekly criterion judges.
    """
    if not points:
        return empty_figure("no metrics", title=title, height=340, legend=False)
    fig = go.Figure()
    labels = labels or {}
    x = [to_utc_naive(p[ts_key]) for p in points]
    enough = [min_count <= 0 or (number_or_gap(p.get(count_key)) or 0) >= min_count for p in points]
    limits: dict[float, list[tuple[str, str]]] = {}
    for color, (key, limit) in zip(
        series_palette(len(thresholds)), thresholds.items(), strict=True
    ):
        name = labels.get(key, key.replace("_", " "))
        raw = [number_or_gap(p.get(key)) for p in points]
        y = [v if ok else None for v, ok in zip(raw, enough, strict=True)]
        fig.add_scatter(
            x=x,
            y=y,
            mode="lines",
            name=name,
            line={"color": color, "width": 1.6},
            hovertemplate=f"{name}: %{{y:.1%}}<extra></extra>",
        )
        if daily:
            days = [to_utc_naive(d[ts_key]) for d in daily]
            values = [number_or_gap(d.get(key)) for d in daily]
            fig.add_scatter(
                x=[*days, days[-1] + timedelta(days=1)],
                y=[*values, values[-1]],
                mode="lines",
                name=f"{name}, daily",
                line={"color": color, "width": 3, "shape": "hv"},
                opacity=0.45,
                hovertemplate=f"{name} that day: %{{y:.1%}}<extra></extra>",
            )
        quiet = [
            (xi, v) for xi, v, ok in zip(x, raw, enough, strict=True) if not ok and v is not None
        ]
        if quiet:
            fig.add_scatter(
                x=[q[0] for q in quiet],
                y=[q[1] for q in quiet],
                mode="markers",
                name=f"{name}, under {min_count} queries",
                marker={"color": color, "size": 4, "opacity": 0.35},
                hovertemplate=f"{name}: %{{y:.1%}} (under {min_count} queries)<extra></extra>",
            )
        if limit is not None:
            hover = f"{name} above threshold: %{{y:.1%}}<extra></extra>"
            _mark_over(fig, x, y, limit, f"{name} above threshold", hover)
            limits.setdefault(round(float(limit), 9), []).append((name, color))
    # One line and one label per distinct threshold: two rates sharing 15 % would otherwise
    # print their labels on top of each other; distinct thresholds alternate sides.
    for i, (limit, owners) in enumerate(sorted(limits.items())):
        color = owners[0][1] if len(owners) == 1 else LIMIT
        names = " & ".join(n for n, _ in owners)
        fig.add_hline(
            y=limit,
            line={"color": color, "dash": "dash", "width": 1.5},
            annotation_text=f"{names} threshold {limit:.0%}",
            annotation_position="top left" if i % 2 == 0 else "top right",
            annotation_font={"color": color, "size": 11},
            annotation_bgcolor="rgba(255,255,255,0.8)",
        )
    styled(fig, title=title, height=360, ytitle="share of queries")
    fig.update_layout(hovermode="x unified")
    time_axis(fig, x)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def confidence_distribution(
    edges: Sequence[float],
    per_day: Mapping[str, Sequence[float]],
    *,
    floor: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Overlaid per-day histograms of overall confidence, as step lines of each day's shares
    (older days lighter), so a shift between days is visible at a glance."""
    days = sorted(per_day)
    if not days or len(edges) < 2:
        return empty_figure("no confidence histogram", title=title, height=340)
    fig = go.Figure()
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    xs = [float(e) for e in edges]
    shades = sample_colorscale(
        "Blues", [0.35 + 0.65 * i / max(1, len(days) - 1) for i in range(len(days))]
    )
    for day, color in zip(days, shades, strict=True):
        counts = [float(c or 0) for c in per_day[day]]
        total = sum(counts)
        try:
            label = parse_ts(day).strftime("%a %d %b")
        except ValueError:
            label = str(day)
        shares = [c / total if total else None for c in counts]
        fig.add_scatter(
            x=xs,
            y=[*shares, shares[-1]],  # a step per bin, from its lower to its upper edge
            mode="lines",
            line={"shape": "hv", "color": color, "width": 2},
            name=label,
            hovertemplate=f"{label}: %{{y:.1%}} from %{{x:.2f}}<extra></extra>",
        )
    if floor is not None:
        fig.add_vline(
            x=floor,
            line={"color": LIMIT, "dash": "dash", "width": 1.5},
            annotation_text=f"floor {floor:g}",
            annotation_position="top left",
            annotation_font={"color": LIMIT, "size": 11},
        )
    # Confidence sits in the upper range; start the axis one bin below the first populated bin.
    populated = [i for i in range(len(centers)) if any(float(per_day[d][i] or 0) for d in days)]
    # (the evidence bins 0..1; only the populated bins are drawn, with a quarter-bin margin)
    width = (edges[-1] - edges[0]) / max(1, len(centers))
    lo = max(edges[0], edges[populated[0]] - width / 4) if populated else edges[0]
    styled(fig, title=title, height=360, ytitle="share of the day's decisions")
    fig.update_xaxes(title_text="overall confidence", range=[lo, edges[-1]])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def confidence_drift(
    daily: Sequence[Mapping[str, Any]],
    *,
    floor: float | None = None,
    drop_threshold_pct: float | None = None,
    ts_key: str = "bucket",
    title: str | None = None,
) -> go.Figure:
    """Top: mean and median confidence per day against the floor. Bottom: day-over-day drop of
    the mean in percent against the alert threshold (positive = confidence fell)."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.1
    )
    if not daily:
        return styled(no_data(fig, "no daily metrics"), title=title, height=420)
    x = [to_utc_naive(r[ts_key]).date().isoformat() for r in daily]
    for key, name, color in (
        ("confidence_mean", "mean confidence", SERIES_COLORS[0]),
        ("confidence_median", "median confidence", SERIES_COLORS[2]),
    ):
        fig.add_scatter(
            x=x,
            y=[number_or_gap(r.get(key)) for r in daily],
            mode="lines+markers",
            name=name,
            line={"color": color},
            hovertemplate=f"{name}: %{{y:.3f}}<extra>%{{x|%a %d %b}}</extra>",
            row=1,
            col=1,
        )
    if floor is not None:
        limit_line(fig, floor, f"floor {floor:g}", row=1)
    drops = [number_or_gap(r.get("confidence_drop_pct")) for r in daily]
    over = [
        d is not None and drop_threshold_pct is not None and d > drop_threshold_pct for d in drops
    ]
    fig.add_bar(
        x=x,
        y=drops,
        name="day-over-day drop of the mean (%)",
        marker_color=[LIMIT if o else "#91a7ff" for o in over],
        hovertemplate="drop: %{y:.2f} %<extra>%{x|%a %d %b}</extra>",
        row=2,
        col=1,
    )
    if drop_threshold_pct is not None:
        limit_line(fig, drop_threshold_pct, f"alert above {drop_threshold_pct:g} %", row=2)
    styled(fig, title=title, height=460)
    fig.update_yaxes(title_text="confidence", row=1, col=1)
    fig.update_yaxes(title_text="drop (%)", row=2, col=1, zeroline=True, zerolinecolor=MUTED)
    day_axis(fig)
    return fig


def cost_per_day(
    per_day: Sequence[Mapping[str, Any]],
    *,
    baseline_model: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Estimated cost per day of the router's choices against sending everything to the
    largest model, and what production actually served when that is known."""
    if not per_day:
        return empty_figure("no cost data", title=title, height=340)
    fig = go.Figure()
    days = [str(r["day"])[:10] for r in per_day]
    baseline = f"all {baseline_model}" if baseline_model else "all largest model"
    series = [
        ("router_usd", "router (estimated)", SERIES_COLORS[0]),
        ("all_largest_usd", baseline, "#adb5bd"),
        ("served_usd", "served in production", SERIES_COLORS[1]),
    ]
    for key, name, color in series:
        ys = [number_or_gap(r.get(key)) for r in per_day]
        if all(y is None for y in ys):
            continue
        fig.add_bar(
            x=days,
            y=ys,
            name=name,
            marker_color=color,
            hovertemplate=f"{name}: $%{{y:,.2f}}<extra>%{{x|%a %d %b}}</extra>",
        )
    fig.update_layout(barmode="group")
    styled(fig, title=title, height=360, ytitle="US$ per day")
    fig.update_yaxes(tickprefix="$")
    day_axis(fig)
    return fig


def latency_p95(
    points: Sequence[Mapping[str, Any]],
    *,
    sla_ms: float | None = 200.0,
    value_key: str = "latency_estimate_p95_ms",
    ts_key: str = "bucket",
    name: str = "p95 latency estimate (interactive tiers)",
    title: str | None = None,
) -> go.Figure:
    """p95 latency per bucket against the SLA; buckets over it are marked red."""
    if not points:
        return empty_figure("no latency data", title=title, height=340)
    fig = go.Figure()
    x, y = _series(points, ts_key, value_key)
    fig.add_scatter(
        x=x,
        y=y,
        mode="lines",
        name=name,
        line={"color": SERIES_COLORS[0], "width": 1.6},
        hovertemplate="%{y:,.0f} ms<extra>%{x|%a %d %b %H:%M}</extra>",
    )
    if sla_ms is not None:
        _mark_over(fig, x, y, sla_ms, "above SLA", "above SLA: %{y:,.0f} ms<extra></extra>")
        limit_line(fig, sla_ms, f"SLA {sla_ms:g} ms")
    styled(fig, title=title, height=340, ytitle="ms")
    time_axis(fig, x)
    fig.update_yaxes(rangemode="tozero")
    return fig


def alert_timeline(
    firings: Sequence[Mapping[str, Any]],
    *,
    rules: Sequence[str] = (),
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    title: str | None = None,
) -> go.Figure:
    """One row per rule, one bar per firing from ``start`` to ``end`` coloured by severity.

    ``rules`` lists rules to show even when they never fired (a quiet row is evidence too).
    A firing without an end was still active when the data ended: it runs to ``end`` and its
    hover says so.
    """
    names = list(dict.fromkeys([*rules, *(str(f["rule"]) for f in firings)]))
    if not names:
        return empty_figure("no alert rules", title=title, height=220, legend=False)
    fig = go.Figure()
    height = max(220, 90 + 30 * len(names))
    window_end = to_utc_naive(end) if end is not None else None
    groups: dict[str, list[tuple[str, datetime, datetime, bool]]] = {}
    for f in firings:
        s = to_utc_naive(f["start"])
        open_ended = is_missing(f.get("end"))
        e = to_utc_naive(f["end"]) if not open_ended else (window_end or s + timedelta(hours=1))
        sev = str(f.get("severity") or "warning")
        groups.setdefault(sev, []).append((str(f["rule"]), s, max(e, s), open_ended))
    for sev, items in groups.items():
        fig.add_bar(
            orientation="h",
            y=[i[0] for i in items],
            base=[i[1] for i in items],
            x=[max((i[2] - i[1]).total_seconds() * 1000, 60_000) for i in items],
            name=sev,
            marker_color=SEVERITY_COLORS.get(sev, MUTED),
            customdata=[
                [
                    i[1].strftime("%a %d %b %H:%M"),
                    i[2].strftime("%a %d %b %H:%M") + (" (still firing)" if i[3] else ""),
                ]
                for i in items
            ],
            hovertemplate="%{y}<br>%{customdata[0]} → %{customdata[1]} UTC<extra>"
            + sev
            + "</extra>",
        )
    if not firings:  # the rule rows stay: a quiet row is evidence too
        no_data(fig, "no firings in this window", size=13, hide_axes=False)
    styled(fig, title=title, height=height)
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(
        type="category", categoryorder="array", categoryarray=names, autorange="reversed"
    )
    # A category axis drops rows without data; invisible points keep every rule listed.
    starts = (
        [to_utc_naive(start)] if start is not None else [b[1] for g in groups.values() for b in g]
    )
    fig.add_scatter(
        x=[min(starts) if starts else None] * len(names),
        y=names,
        mode="markers",
        marker={"opacity": 0},
        showlegend=False,
        hoverinfo="skip",
    )
    span = [to_utc_naive(t) for t in (start, end) if t is not None]
    time_axis(fig, span + [b[i] for g in groups.values() for b in g for i in (1, 2)])
    if start is not None and end is not None:
        fig.update_xaxes(range=[to_utc_naive(start), to_utc_naive(end)])
    return fig


def matrix_heatmap(
    matrix: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    y_title: str,
    x_title: str,
    title: str | None = None,
) -> go.Figure:
    """Counts from ``row_labels`` (rows) to ``col_labels`` (columns). Colour is the share of the
    row, so a small row is as readable as a big one; cells show count and row share, and the
    diagonal (no change / correct) is outlined."""
    if not matrix or not any(matrix):
        return empty_figure("no data", title=title, height=320, legend=False)
    fig = go.Figure()
    rows = [[float(v or 0) for v in row] for row in matrix]
    shares = [[v / sum(r) if sum(r) else 0.0 for v in r] for r in rows]

    def cell(v: float, share: float) -> str:
        if not v:
            return ""
        return f"{int(v):,}<br>" + ("<1%" if share < 0.005 else f"{share:.0%}")

    text = [
        [cell(v, s) for v, s in zip(r, sr, strict=True)] for r, sr in zip(rows, shares, strict=True)
    ]
    fig.add_heatmap(
        z=shares,
        x=list(col_labels),
        y=list(row_labels),
        text=text,
        texttemplate="%{text}",
        customdata=rows,
        colorscale="Blues",
        zmin=0,
        zmax=1,
        colorbar={"title": {"text": "row share"}, "tickformat": ".0%"},
        hovertemplate=f"{y_title}: %{{y}}<br>{x_title}: %{{x}}<br>"
        "%{customdata:,} (%{z:.1%} of row)<extra></extra>",
        xgap=2,
        ygap=2,
    )
    for i in range(min(len(row_labels), len(col_labels))):
        fig.add_shape(
            type="rect",
            x0=i - 0.5,
            x1=i + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": INK, "width": 1.5},
        )
    size = 120 + 64 * len(row_labels)
    styled(fig, title=title, height=max(320, size), legend=False)
    fig.update_xaxes(title_text=x_title, side="top", showgrid=False)
    fig.update_yaxes(title_text=y_title, autorange="reversed", showgrid=False)
    fig.update_layout(margin={"t": 80 if not title else 110})
    return fig


def confusion_heatmap(confusion: Mapping[str, Any], *, title: str | None = None) -> go.Figure:
    """Labelled level (rows) against the level the router scored (columns)."""
    return _level_heatmap(confusion, "expected level (label)", "scored level (router)", title)


def transition_heatmap(transition: Mapping[str, Any], *, title: str | None = None) -> go.Figure:
    """Level under the current config (rows) against the candidate config (columns)."""
    return _level_heatmap(transition, "current config", "candidate config", title)


def _level_heatmap(
    doc: Mapping[str, Any], y_title: str, x_title: str, title: str | None
) -> go.Figure:
    """A level-by-level matrix of the evidence (``{"levels": [...], "matrix": [[...]]}``)."""
    levels = list(doc["levels"])
    return matrix_heatmap(
        doc["matrix"], levels, levels, y_title=y_title, x_title=x_title, title=title
    )
