"""Errors and warnings as data.

Every problem the library finds in its input is a :class:`BeamError` (or a subclass)
carrying the file, the chunk id and the byte offset where it was found; a file that
cannot be read at all (missing, unreadable, a directory) is a :class:`ReadError`.
Nothing else escapes the public API for bad input.  The command line turns a
``BeamError`` into one line with :func:`format_error` and exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass


class BeamError(Exception):
    """A file could not be read as a BEAM module.

    ``file``: the path (or ``"<bytes>"``), ``chunk``: the 4-letter chunk id or ``None``
    for the container, ``offset``: the byte offset (from the start of the file for the
    container, from the start of the chunk's data otherwise), ``function``: for Code
    errors, ``"name/arity"`` of the function being decoded.
    """

    kind = "invalid"

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        chunk: str | None = None,
        offset: int | None = None,
        function: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.chunk = chunk
        self.offset = offset
        self.function = function

    def with_context(self, *, file=None, chunk=None, offset=None, function=None) -> "BeamError":
        """Fill in context the raiser did not know (never overwrites what is set)."""
        if self.file is None and file is not None:
            self.file = file
        if self.chunk is None and chunk is not None:
            self.chunk = chunk
        if self.offset is None and offset is not None:
            self.offset = offset
        if self.function is None and function is not None:
            self.function = function
        return self

    def __str__(self) -> str:
        return format_error(self)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "file": self.file,
            "chunk": self.chunk,
            "offset": self.offset,
            "function": self.function,
            "reason": self.reason,
        }


class NotBeamError(BeamError):
    """The bytes are not a BEAM container at all (bad magic, not gzip)."""

    kind = "not_beam"


class TruncatedError(BeamError):
    """A read ran past the end of the file or of a chunk."""

    kind = "truncated"


class FormatError(BeamError):
    """The structure is readable but a value in it is invalid (bad tag, index out of range...)."""

    kind = "format"


class LimitError(BeamError):
    """A size, count or depth exceeds what the reader accepts (decompression bombs, deep nesting)."""

    kind = "limit"


class UnsupportedError(BeamError):
    """A valid structure this version of beaminspect does not understand."""

    kind = "unsupported"


class ReadError(BeamError):
    """The operating system refused to read the file (``reason`` is its message:
    missing, no permission, a directory...)."""

    kind = "io"


class NodeError(BeamError):
    """A running node could not be asked (down, wrong cookie, a name that does not
    resolve, a release outside the modelled ones, a lost connection, a time-out).
    ``file`` is ``"node NAME"``; ``reason`` the cause.  The cookie is never part of it."""

    kind = "node"


def format_error(err: BeamError) -> str:
    """One line: ``FILE: chunk ID at offset N: reason`` (parts that are unknown are left out)."""
    parts = []
    if err.file is not None:
        parts.append(err.file)
    where = []
    if err.chunk is not None:
        where.append(f"chunk {err.chunk}")
    if err.function is not None:
        where.append(f"function {err.function}")
    if err.offset is not None:
        where.append(f"at offset {err.offset}")
    if where:
        parts.append(" ".join(where))
    parts.append(err.reason)
    # Chunk ids and names come from the file: keep control characters off the line.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in ": ".join(parts))


@dataclass(frozen=True)
class BeamWarning:
    """Something unusual that does not stop the file from being read
    (an unknown Type chunk version, an unknown chunk id...)."""

    message: str
    chunk: str | None = None
    offset: int | None = None

    def to_dict(self) -> dict:
        return {"chunk": self.chunk, "offset": self.offset, "message": self.message}
