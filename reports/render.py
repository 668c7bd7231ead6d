"""Template rendering for every report: one Jinja2 environment, shared filters, atomic writes.

HTML templates (``*.html.j2``) are autoescaped, so corpus-derived strings (tenants, file names,
quarantine reasons) can never inject markup. Markdown templates (``*.md.j2``) are not
HTML-escaped by Jinja, but a Markdown viewer renders inline HTML, so the environment's
``finalize`` hook escapes ``< > & [ ]`` and the table separator ``|`` in every ``{{ … }}`` output of
a non-autoescaped template: the Markdown report is safe by default too. Wrap a value in
``markupsafe.Markup`` to emit it verbatim (trusted, pre-formatted text only).

Every formatting filter prints ``—`` for a missing value (None or NaN) rather than "None" or
"nan", so a metric that could not be measured is visibly absent, never a fake number.
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

MISSING = "—"
"""What every filter prints for a value that was not measured."""

# Square brackets become entities, so no value can form a Markdown link or image
# ("[x](javascript:...)", "![x](...)", a "[x]: url" reference); entities, unlike backslash
# escapes, cannot be undone by a backslash in the value itself.
_MD_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "[": "&#91;",
        "]": "&#93;",
        "|": "\\|",
        "\n": " ",
        "\r": " ",
    }
)


def is_missing(value: Any) -> bool:
    """None and NaN both mean "not measured" (pandas exports NaN, JSON exports null)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def md_escape(value: Any) -> str:
    """Text safe inside Markdown (including a table cell): no inline HTML, no links, no column
    breaks."""
    return str(value).translate(_MD_ESCAPES)


def pct(value: Any, digits: int = 1) -> str:
    """A ratio as a percentage: 0.083 -> "8.3 %"."""
    if is_missing(value):
        return MISSING
    return f"{float(value) * 100:.{digits}f} %"


def usd(value: Any, digits: int | None = None) -> str:
    """US dollars; amounts under a cent keep four significant digits so they do not show as 0."""
    if is_missing(value):
        return MISSING
    v = float(value)
    if digits is None:
        digits = 2 if v == 0 or abs(v) >= 0.01 else max(2, 3 - math.floor(math.log10(abs(v))))
    sign = "-" if v < 0 else ""
    return f"{sign}${abs(v):,.{digits}f}"


def ms(value: Any, digits: int = 0) -> str:
    """Milliseconds: 160.4 -> "160 ms"."""
    if is_missing(value):
        return MISSING
    return f"{float(value):,.{digits}f} ms"


def num(value: Any, digits: int = 0) -> str:
    """A number with thousands separators: 50250 -> "50,250"; bools print as yes / no."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and digits == 0:
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def parse_ts(value: Any) -> datetime:
    """ISO-8601 string, date or datetime -> aware UTC datetime (naive input is taken as UTC)."""
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, date):
        ts = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def dt(value: Any, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A timestamp in UTC for people: "2026-11-24 23:10 UTC". Unparseable text is shown as is."""
    if is_missing(value) or value == "":
        return MISSING
    try:
        return parse_ts(value).strftime(fmt)
    except (TypeError, ValueError):
        return str(value)


def sig(value: Any, digits: int = 3) -> str:
    """A number of unknown scale (a threshold, an observed value) to ``digits`` significant
    digits: 0.15 -> "0.15", 200.0 -> "200", 0.0213 -> "0.0213"."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if abs(v) >= 10**digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


FILTERS = {
    "pct": pct,
    "usd": usd,
    "ms": ms,
    "num": num,
    "sig": sig,
    "dt": dt,
    "md": md_escape,
}


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    if is_missing(value):
        return MISSING
    if eval_ctx.autoescape or isinstance(value, Markup):
        return value
    return md_escape(value)


@cache
def _inline_css() -> Markup:
    css = resources.files("reports").joinpath("static", "report.css").read_text(encoding="utf-8")
    return Markup(css)


@cache
def environment() -> Environment:
    """The one environment every report renders with (templates live in reports/templates)."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "html", "htm", "xml"),
            disabled_extensions=("md.j2", "md", "txt"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.globals["inline_css"] = _inline_css
    return env


def render(template: str, **ctx: Any) -> str:
    """Render a template from reports/templates to a string."""
    return environment().get_template(template).render(**ctx)


def write_atomic(path: Path, text: str) -> Path:
    """Write via a temporary file in the same folder and rename, so a reader (or a browser
    refreshing the report site) never sees a half-written page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render_to(path: Path, template: str, **ctx: Any) -> Path:
    """Render ``template`` with ``ctx`` and write it atomically to ``path``; returns ``path``."""
    return write_atomic(Path(path), render(template, **ctx))
