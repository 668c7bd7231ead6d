"""Reading one input document a page is built from (pilot evidence, a drill journal): from a
path or an in-memory mapping, validated once, every problem named with the file and key path."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from reports.validation import describe

D = TypeVar("D")


def validate_document(
    data: Any,
    source: str,
    *,
    what: str,
    invalid: str,
    parse: Callable[[dict[str, Any]], D],
    error: type[ValueError],
    refused: tuple[type[Exception], ...] = (),
) -> D:
    """``parse`` the top-level object; its ``ValidationError`` becomes ``error`` listing every
    bad key (``{what} {source} {invalid}:``), a ``refused`` exception one line naming the source."""
    if not isinstance(data, Mapping):
        raise error(f"{what} {source}: expected a JSON object at the top")
    try:
        return parse(dict(data))
    except ValidationError as exc:
        raise error(describe(exc, f"{what} {source} {invalid}:")) from None
    except refused as exc:
        raise error(f"{what} {source}: {exc}") from None


def load_document(
    document: Mapping[str, Any] | Path | str,
    *,
    what: str,
    in_memory: str,
    validate: Callable[[Any, str], D],
    error: type[ValueError],
) -> tuple[D, str]:
    """Read (when a path) and ``validate``; returns the document and a label naming its source
    (the path, or ``({in_memory}, run_id=...)``)."""
    if isinstance(document, Mapping):
        source = f"({in_memory}, run_id={document.get('run_id')!r})"
        return validate(document, source), source
    path = Path(document)
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {source}: file not found") from None
    except IsADirectoryError:
        raise error(f"{what} {source}: is a folder, not a file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} {source}: not valid JSON ({exc})") from None
    return validate(data, source), source


def keep_copy(
    document: Mapping[str, Any] | Path | str, dest: Path, *, refresh: bool = False
) -> None:
    """Keep the input document next to the pages built from it (the site index finds runs by
    it): written when ``dest`` has none; with ``refresh``, a source file replaces another file
    already at ``dest``."""
    from reports.render import write_atomic

    if isinstance(document, Mapping):
        if not dest.exists():
            write_atomic(dest, json.dumps(dict(document), indent=2, default=str) + "\n")
        return
    src = Path(document)
    if not dest.exists() or (refresh and not dest.resolve().samefile(src.resolve())):
        write_atomic(dest, src.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PageFolder:
    """Where the pages built from one document go, and what they share."""

    path: Path
    document: Path
    plotly_js: Path
    generated_at: str


def page_folder(
    document: Mapping[str, Any] | Path | str,
    run_dir: Path,
    copy_name: str,
    out_root: Path,
    *,
    refresh: bool = False,
    generated_at: datetime | None = None,
) -> PageFolder:
    """Create ``run_dir``, keep the document in it as ``copy_name`` (``keep_copy``) and make
    sure the site root has its one shared ``assets/plotly.min.js``."""
    from reports.assets import ensure_plotly_js

    run_dir.mkdir(parents=True, exist_ok=True)
    copy = run_dir / copy_name
    keep_copy(document, copy, refresh=refresh)
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    return PageFolder(
        path=run_dir,
        document=copy,
        plotly_js=ensure_plotly_js(out_root),
        generated_at=generated.isoformat(timespec="seconds"),
    )
