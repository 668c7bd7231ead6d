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

Great Expectations Data Docs link Bootstrap, jQuery, bootstrap-table and Font Awesome from CDNs;
``make_data_docs_offline`` copies the vendored copies (``reports/static/gx``) into the site and
rewrites every page to load them by relative paths. A figure whose plotly.js did not load (a
page copied without its ``assets/`` folder) says so instead of staying blank.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from importlib import resources
from pathlib import Path

from markupsafe import Markup

from reports.render import write_atomic

ASSETS_DIR = "assets"
PLOTLY_JS = "plotly.min.js"

FIGURE_CONFIG = {
    "displaylogo": False,
    "displayModeBar": "hover",  # shown on hover only: it no longer covers legends
    "responsive": True,
    "toImageButtonOptions": {"scale": 2},
}


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
    missing = html.escape(
        f"Chart not drawn: {PLOTLY_JS} did not load. Open this page from the whole report "
        f"folder (it reads {ASSETS_DIR}/{PLOTLY_JS} at the site root) with JavaScript on."
    )
    fig_html = fig.to_html(  # type: ignore[attr-defined]
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=FIGURE_CONFIG,
        **kwargs,
    )
    # Shown unless plotly.js is there: a page copied without assets/ says why it has no charts.
    notice = (
        f'<p class="figure-missing" id="{div_id}-missing" role="alert">{missing}</p>'
        f'<script>if (window.Plotly) {{ document.getElementById("{div_id}-missing").remove(); }}'
        "</script>"
    )
    return Markup(f'<div class="figure">{notice}{fig_html}</div>')


# --------------------------------------------------------------------------------------------
# Great Expectations Data Docs, offline
# --------------------------------------------------------------------------------------------
GX_VENDOR_DIR = "vendor"
# CDN file name (the last path part of the URL) -> vendored file; None: drop the tag (Vega: GX
# links it on every page, our suites draw no Vega chart).
_GX_ASSETS: dict[str, str | None] = {
    "jquery-3.7.1.min.js": "jquery.min.js",
    "popper.min.js": "popper.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
    "bootstrap-table.min.js": "bootstrap-table.min.js",
    "bootstrap-table.min.css": "bootstrap-table.min.css",
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "bootstrap-prefers-dark.css": "bootstrap-prefers-dark.min.css",
    "all.min.css": "all.min.css",
    "vega@5": None,
    "vega-lite@5": None,
    "vega-embed@6": None,
}
_EXTERNAL = r"(?:https?:)?//[^\"'\s>]+"
# A <script src> or <link href> tag loading an external URL (the whole tag, closing </script>
# included), and a CSS url(...) pointing outside.
_ASSET_TAG = re.compile(
    rf"<script\b[^>]*\bsrc=[\"']({_EXTERNAL})[\"'][^>]*>\s*</script>"
    rf"|<link\b[^>]*\bhref=[\"']({_EXTERNAL})[\"'][^>]*/?>",
    re.IGNORECASE,
)
_IMG_SRC = re.compile(rf"(<img\b[^>]*?\bsrc=)([\"'])({_EXTERNAL})\2", re.IGNORECASE)
_STATIC_REF = re.compile(r"\b(src|href)=\"([^\"#:?]*?static/[^\"#?]*)\"")
_CSS_URL = re.compile(rf"url\(\s*[\"']?({_EXTERNAL})[\"']?\s*\)", re.IGNORECASE)
#: What ``external_asset_links`` looks for: any src/href or CSS url() that leaves the folder.
EXTERNAL_ASSET = re.compile(
    rf"<(?:script|img|iframe|source|embed)\b[^>]*\bsrc=[\"']?{_EXTERNAL}"
    rf"|<link\b[^>]*\bhref=[\"']?{_EXTERNAL}"
    rf"|url\(\s*[\"']?{_EXTERNAL}",
    re.IGNORECASE,
)


def _gx_vendor_source() -> Path:
    return Path(str(resources.files("reports").joinpath("static", "gx")))


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def make_data_docs_offline(docs_dir: Path) -> list[Path]:
    """Make a GX Data Docs site work without network; returns the pages it rewrote.

    Copies the vendored assets into ``<docs_dir>/vendor/``, points every page's CDN
    ``<script>``/``<link>`` at them by a relative path (dropping ``integrity``: the check is
    against the CDN's bytes), removes tags for assets not vendored, and points CSS ``url()``s
    that leave the folder at nothing. Idempotent: a rebuilt site is rewritten again.
    """
    docs_dir = Path(docs_dir)
    source = _gx_vendor_source()
    vendor = docs_dir / GX_VENDOR_DIR
    for f in source.iterdir():
        if f.is_file() and f.suffix in (".js", ".css", ".woff2", ".txt"):
            _copy_if_changed(f, vendor / f.name)
    changed = []
    for page in sorted(docs_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        prefix = relative_root(page, vendor)
        new = _ASSET_TAG.sub(lambda m, prefix=prefix: _local_tag(m, prefix), text)
        new = _IMG_SRC.sub(lambda m, page=page: _local_img(m, page, docs_dir), new)
        new = _CSS_URL.sub("url()", new)
        new = _STATIC_REF.sub(lambda m, page=page: _fix_static(m, page, docs_dir), new)
        if new != text:
            write_atomic(page, new)
            changed.append(page)
    for css in sorted(docs_dir.rglob("*.css")):
        if vendor in css.parents:
            continue
        text = css.read_text(encoding="utf-8")
        new = _CSS_URL.sub("url()", text)  # e.g. GX's dark-mode logo from an S3 bucket
        if new != text:
            write_atomic(css, new)
    return changed


def _local_img(match: re.Match[str], page: Path, docs_dir: Path) -> str:
    """GX's logo comes from an S3 bucket; the site ships the same image in static/images."""
    name = match.group(3).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    images = docs_dir / "static" / "images"
    local = f"{relative_root(page, images)}/{name}" if (images / name).is_file() else ""
    return f"{match.group(1)}{match.group(2)}{html.escape(local)}{match.group(2)}"


def _fix_static(match: re.Match[str], page: Path, docs_dir: Path) -> str:
    """GX writes validation pages' favicon one folder too shallow; point broken ``static/``
    links at the site's static folder."""
    ref = match.group(2)
    if (page.parent / ref).is_file():
        return match.group(0)
    rest = ref.split("static/", 1)[1]
    return f'{match.group(1)}="{relative_root(page, docs_dir)}/static/{rest}"'


def _local_tag(match: re.Match[str], prefix: str) -> str:
    url = match.group(1) or match.group(2)
    name = url.rstrip("/").rsplit("/", 1)[-1]
    local = _GX_ASSETS.get(name)
    if local is None:
        return ""
    href = html.escape(f"{prefix}/{local}")
    if match.group(1):
        return f'<script src="{href}"></script>'
    return f'<link rel="stylesheet" href="{href}">'


def external_asset_links(root: Path) -> dict[Path, list[str]]:
    """Every page or stylesheet under ``root`` that loads something from outside the folder."""
    found: dict[Path, list[str]] = {}
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() not in (".html", ".htm", ".css") or not path.is_file():
            continue
        hits = EXTERNAL_ASSET.findall(path.read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[path] = hits
    return found
