"""Offline assets: one shared copy of plotly.js per report site, and figure HTML that uses it.

Reports are read by auditors from a copied folder or a file:// URL, often without network, so
no page may load anything from a CDN. The site keeps one ``assets/plotly.min.js`` (about 4.8 MB)
at its root instead of inlining it into every page; each page loads it by a *relative* path
(``plotly_src``), so the folder still works after being moved or zipped.

Layout of a report site (``out_root``)::

    out_root/index.html
    out_root/assets/plotly.min.js
    out_root/<pilot run id>/report.html        -> ../assets/plotly.min.js
    out_root/drills/<drill run>/postmortem.html -> ../../assets/plotly.min.js
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from markupsafe import Markup

from reports.render import write_atomic

ASSETS_DIR = "assets"
PLOTLY_JS = "plotly.min.js"

FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


def _packaged_plotly_js() -> Path | None:
    """The plotly.min.js file inside the installed plotly package, when it is a plain file."""
    try:
        p = resources.files("plotly").joinpath("package_data", PLOTLY_JS)
        return Path(str(p)) if p.is_file() else None
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def ensure_plotly_js(out_root: Path) -> Path:
    """Copy the installed plotly.js to ``<out_root>/assets/plotly.min.js`` unless an identical-size
    copy is already there; returns its path. Call it once per build; it is cheap when present."""
    target = Path(out_root) / ASSETS_DIR / PLOTLY_JS
    source = _packaged_plotly_js()
    if target.is_file() and (source is None or source.stat().st_size == target.stat().st_size):
        return target
    from plotly.offline import get_plotlyjs

    write_atomic(target, get_plotlyjs())
    return target


def relative_root(page: Path, out_root: Path) -> str:
    """The relative URL from the folder of ``page`` back to ``out_root`` ("..", "../..", ".")."""
    rel = os.path.relpath(Path(out_root).resolve(), Path(page).resolve().parent)
    return Path(rel).as_posix()


def plotly_src(page: Path, out_root: Path) -> str:
    """The ``<script src>`` value for ``page``: the site's plotly.js by a relative path."""
    return f"{relative_root(page, out_root)}/{ASSETS_DIR}/{PLOTLY_JS}"


def figure_html(fig: object, div_id: str, *, height: int | None = None) -> Markup:
    """A Plotly figure as an HTML fragment without plotly.js (the page loads it once).

    ``div_id`` is fixed by the caller so rebuilding a report gives the same bytes. Plotly
    escapes ``<``, ``>`` and ``/`` in the embedded JSON, so data strings cannot close the script.
    """
    kwargs = {"default_height": f"{height}px"} if height else {}
    html = fig.to_html(  # type: ignore[attr-defined]
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=FIGURE_CONFIG,
        **kwargs,
    )
    return Markup(f'<div class="figure">{html}</div>')
