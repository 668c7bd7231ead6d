"""Tables that read at any width: a rich table when it fits the terminal, otherwise one block
of `key: value` lines per row (CI logs and pipes are often 80 columns). Values are never cut."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text
"""A value; a ``Text`` keeps its style (a red 'failed'), a str is printed as is (no markup)."""


def print_records(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """One table, or one `- <first column>` block per row when the table would not fit."""
    cells = [[v if isinstance(v, Text) else Text(str(v)) for v in r] for r in rows]
    widths = [max([len(c), *(r[i].cell_len for r in cells)]) for i, c in enumerate(columns)]
    needed = sum(widths) + 3 * len(columns) + 1
    if needed <= console.width:
        table = Table(title=title)
        for c in columns:
            table.add_column(c, no_wrap=True)
        for r in cells:
            table.add_row(*r)
        console.print(table, soft_wrap=False)
        return
    console.print(Text(title, style="bold"), soft_wrap=False)
    key_w = max(len(c) for c in columns)
    for r in cells:
        print_wrapped(console, Text.assemble("- ", r[0]), 0)
        for c, v in zip(columns[1:], r[1:], strict=True):
            if v.plain:
                print_wrapped(console, Text.assemble(f"{c:<{key_w}}  ", v), 4)


def print_wrapped(console: Console, text: Text, indent: int) -> None:
    """``text`` wrapped at spaces to the console width, every line indented by ``indent``;
    a path or id moves whole to the next line (only one longer than a line is folded), and no
    line is padded with blanks."""
    for line in text.wrap(console, max(20, console.width - indent), overflow="fold"):
        line.rstrip()
        console.print(Text(" " * indent) + line, soft_wrap=True)
