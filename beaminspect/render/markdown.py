"""Markdown pieces shared by the reports: text that nothing in it turns into markup,
names as inline code, and code-block fences."""

from __future__ import annotations

import re

__all__ = ["escape", "code", "fence"]

_SPECIAL = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "\n": " ", "\r": " ",
                          "*": "\\*", "_": "\\_", "`": "\\`", "[": "\\[", "]": "\\]",
                          "\\": "\\\\", "#": "\\#"})
_TICKS = re.compile("`+")


def escape(s: str) -> str:
    """Text in a Markdown table cell: nothing in it is taken for markup."""
    return s.translate(_SPECIAL)


def _longest_run(s: str) -> int:
    return max((len(m) for m in _TICKS.findall(s)), default=0)


def code(s: str | None) -> str:
    """A name as inline code in a table cell (``-`` for none): a name holding backticks
    gets a fence longer than its longest run of them, and pipes stay in the cell."""
    if not s:
        return "-"
    s = s.replace("|", "\\|").replace("\n", " ")
    run = _longest_run(s)
    if not run:
        return f"`{s}`"
    ticks = "`" * (run + 1)
    return f"{ticks} {s} {ticks}"


def fence(text: str) -> str:
    """A code-block fence longer than any run of backticks in ``text``."""
    return "`" * max(3, _longest_run(text) + 1)
