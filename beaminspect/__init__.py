"""beaminspect: read compiled Erlang/Elixir ``.beam`` files and predict what a hot code
load changes and breaks.

    >>> import beaminspect
    >>> m = beaminspect.load("lists.beam")
    >>> m.name, m.md5.hex(), len(m.exports)

Public API: :func:`load`, :class:`BeamModule`, :class:`BeamError` and its kinds
(:class:`NotBeamError`, :class:`TruncatedError`, :class:`FormatError`,
:class:`LimitError`, :class:`UnsupportedError`, :class:`ReadError` for a file the
system cannot read, and :class:`NodeError` for a running node that cannot be asked), the
chunk records in :mod:`beaminspect.format.chunks`, terms in
:mod:`beaminspect.terms`, what runs on a node in :mod:`beaminspect.live`.
"""

from beaminspect._version import __version__
from beaminspect.errors import (BeamError, BeamWarning, FormatError, LimitError, NodeError,
                                NotBeamError, ReadError, TruncatedError, UnsupportedError, format_error)
from beaminspect.module import BeamModule, load

__all__ = [
    "__version__", "load", "BeamModule", "BeamError", "BeamWarning", "FormatError",
    "LimitError", "NodeError", "NotBeamError", "ReadError", "TruncatedError", "UnsupportedError",
    "format_error",
]
