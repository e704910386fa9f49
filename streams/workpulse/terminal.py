"""Showing data as data in the terminal.

Captions, hashtags, SQL results and column names are data: rich would read `[bold]`,
`[/x]` as markup and `:x:` as an emoji code in a plain string (a caption can break the
view or change what it shows), and the terminal itself obeys control characters (ESC
sequences move the cursor, recolour, retitle the window) and bidirectional overrides
(which reorder what follows them). Every value shown goes through `cell`: a
`rich.text.Text` (never parsed) in which those characters are written as visible
escapes (`\x1b`, `\u202e`); our own labels may still use markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: Any) -> str:
    """`value` as a string with control and bidi characters written as escapes."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_visible, text)


def cell(value: Any) -> Text:
    """A value as literal text: no markup, no emoji codes, no control characters."""
    return Text(safe_text(value))


def data_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], **kwargs: Any) -> Table:
    """A table whose header and cells are shown verbatim."""
    table = Table(show_edge=False, **kwargs)
    for name in columns:
        table.add_column(cell(name))
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    return table
