"""The pages one drill run refreshes: its postmortem, the Failure Modes & Guarantees page and
the site index. The drill flow and ``harness drill`` call these after the journal is written."""

from __future__ import annotations

from pathlib import Path


def build_postmortem_page(journal_path: str | Path, out_root: str | Path) -> str:
    """The drill's ``postmortem.html``; returns its path."""
    from reports.postmortem import build_postmortem

    return str(build_postmortem(Path(journal_path), Path(out_root)).html)


def build_drill_site(out_root: str | Path) -> list[str]:
    """The Failure Modes & Guarantees page and the site index; returns their paths."""
    from reports.failure_modes import build_failure_modes
    from reports.site import build_index

    return [str(build_failure_modes(Path(out_root))), str(build_index(Path(out_root)))]
