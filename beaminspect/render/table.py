"""Plain text tables that fit the terminal.

One column of a table holds free text (a message, a reason); it is wrapped at spaces to
what the other columns leave of the width: ``COLUMNS`` when set, else the terminal's
when standard output is one, else a fixed width for that column (so that output sent to
a file or a pipe does not depend on where it was made).  Nothing is ever split inside a
word: names (modules, functions, kinds) stay whole, and a line may run past the width
rather than break one.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

__all__ = ["table", "terminal_width"]

#: The free-text column's width when the output is not a terminal and COLUMNS is unset.
FALLBACK_WRAP = 70
#: The narrowest the free-text column gets, however little room the others leave.
MIN_WRAP = 24


def terminal_width() -> int | None:
    """``COLUMNS``, else the terminal's width when standard output is a terminal, else
    None."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    try:
        if sys.stdout.isatty():
            return shutil.get_terminal_size().columns
    except (AttributeError, ValueError, OSError):
        pass
    return None


def table(rows, headers, wrap: int | None = None, **options) -> str:
    """``tabulate(rows, headers, tablefmt="simple", **options)`` with column ``wrap``
    (an index) wrapped to fit; the other columns are never wrapped."""
    from tabulate import tabulate
    rows = [list(r) for r in rows]
    if wrap is not None and rows:
        width = terminal_width()
        if width is None:
            room = FALLBACK_WRAP
        else:
            # tabulate's "simple" columns: two spaces apart, at least their header
            # plus two wide.
            others = sum(max([len(str(headers[i])) + 2] + [len(str(r[i])) for r in rows])
                         for i in range(len(headers)) if i != wrap)
            room = max(MIN_WRAP, width - others - 2 * (len(headers) - 1))
            room = min(room, max(len(str(r[wrap])) for r in rows))
        for r in rows:
            r[wrap] = "\n".join(textwrap.wrap(str(r[wrap]), room, break_long_words=False,
                                              break_on_hyphens=False)) or str(r[wrap])
    return tabulate(rows, headers=headers, tablefmt="simple", **options)
