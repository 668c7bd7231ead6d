"""Tables that read at any width: a rich table when it fits the terminal, otherwise one block
of `key: value` lines per row (CI logs and pipes are often 80 columns). Values are never cut."""

from __future__ import annotations

import re
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
    """``text`` wrapped at spaces to the console width, every line indented by ``indent``.

    A path or id goes whole to the next line; one longer than a whole line stays whole on a line
    of its own (a copied id must not hold a line break). No line is padded with blanks."""
    width = max(20, console.width - indent)
    for paragraph in text.split("\n"):
        for line in paragraph.divide(_breaks(paragraph.plain, width)):
            line.rstrip()
            console.print(Text(" " * indent) + line if line.plain else line, soft_wrap=True)


def _breaks(plain: str, width: int) -> list[int]:
    """Offsets of the words that start a new line (greedy; never inside a word)."""
    breaks: list[int] = []
    line_start = 0
    for word in re.finditer(r"\S+", plain):
        if word.end() - line_start > width and word.start() > line_start:
            breaks.append(word.start())
            line_start = word.start()
    return breaks
