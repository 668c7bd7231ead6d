"""What one validation pass found (``CorpusSummary``): counts, reasons, days, window; JSON
and console (rich) renderings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class CorpusSummary:
    """What one validation pass found. ``accepted + quarantined == total_rows`` always."""

    path: str
    format: str
    total_rows: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]  # every reason code, zero included
    rows_per_day: dict[date, int]  # accepted rows per UTC day, whole file
    first_ts: datetime | None
    last_ts: datetime | None
    window: tuple[date, date] | None  # selected days, inclusive
    in_window: int  # accepted rows inside the window
    quarantine_path: str | None
    columns: tuple[str, ...] = ()

    @property
    def days(self) -> list[date]:
        """Days with accepted rows, whole file."""
        return sorted(self.rows_per_day)

    @property
    def labelled(self) -> bool:
        return "expected_level" in self.columns or "expected_domain" in self.columns

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates and timestamps as ISO-8601)."""
        return {
            "path": self.path,
            "format": self.format,
            "total_rows": self.total_rows,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": dict(self.reasons),
            "rows_per_day": {d.isoformat(): c for d, c in sorted(self.rows_per_day.items())},
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "window": [d.isoformat() for d in self.window] if self.window else None,
            "in_window": self.in_window,
            "quarantine_path": self.quarantine_path,
            "columns": list(self.columns),
        }

    def to_rich(self) -> Any:
        """A rich renderable: overview, quarantine reasons, rows per day."""
        from rich.console import Group
        from rich.table import Table

        overview = Table(title=f"Corpus {self.path} ({self.format})", show_header=False)
        overview.add_column("field", style="bold")
        overview.add_column("value", justify="right")
        overview.add_row("rows", f"{self.total_rows:,}")
        overview.add_row("accepted", f"[green]{self.accepted:,}[/green]")
        style = "red" if self.quarantined else "green"
        overview.add_row("quarantined", f"[{style}]{self.quarantined:,}[/{style}]")
        overview.add_row("first ts", _iso(self.first_ts) or "-")
        overview.add_row("last ts", _iso(self.last_ts) or "-")
        overview.add_row("days with rows", str(len(self.rows_per_day)))
        if self.window:
            overview.add_row(
                "window",
                f"{self.window[0]} .. {self.window[1]} ({self.in_window:,} rows)",
            )
        if self.quarantine_path:
            overview.add_row("quarantine file", self.quarantine_path)

        reasons = Table(title="Quarantine by reason")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, count in self.reasons.items():
            reasons.add_row(reason, f"{count:,}", style=None if count else "dim")

        per_day = Table(title="Accepted rows per UTC day")
        per_day.add_column("day")
        per_day.add_column("weekday")
        per_day.add_column("rows", justify="right")
        for d, c in sorted(self.rows_per_day.items()):
            in_win = self.window is None or self.window[0] <= d <= self.window[1]
            per_day.add_row(
                d.isoformat(), d.strftime("%a"), f"{c:,}", style=None if in_win else "dim"
            )
        return Group(overview, reasons, per_day)

    def __rich__(self) -> Any:
        return self.to_rich()


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
