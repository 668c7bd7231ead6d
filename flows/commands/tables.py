"""Tables that read at any width: a rich table when it fits the terminal, otherwise one block
of `key: value` lines per row (CI logs and pipes are often 80 columns). Values are never cut."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def print_records(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> None:
    rows = [[str(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    needed = sum(widths) + 3 * len(columns) + 1
    if needed <= console.width:
        table = Table(title=title)
        for c in columns:
            table.add_column(c, no_wrap=True)
        for r in rows:
            table.add_row(*r)
        console.print(table)
        return
    from rich.padding import Padding
    from rich.text import Text

    console.print(Text(title, style="bold"))
    key_w = max(len(c) for c in columns)
    for r in rows:
        console.print(Text(f"- {r[0]}"))
        for c, v in zip(columns[1:], r[1:], strict=True):
            if v:
                # Wrapped at spaces within the width; continuation lines stay indented.
                console.print(Padding(Text(f"{c:<{key_w}}  {v}"), (0, 0, 0, 4), expand=False))
