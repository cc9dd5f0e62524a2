"""Bounds-checked reads over a memoryview.

A :class:`Reader` walks one region (a whole file, or one chunk's data).  Every read
checks the remaining length first and raises :class:`~beaminspect.errors.TruncatedError`
with the chunk id and the offset *within the region*, so no ``struct.error`` or
``IndexError`` ever reaches a caller.

:func:`read_file` reads a whole file up to a size limit: the one place files are read.
"""

from __future__ import annotations

import os
import struct

from beaminspect.errors import BeamError, FormatError, LimitError, ReadError, TruncatedError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


class Reader:
    """Sequential big-endian reader over ``buf[start:end]``; ``pos`` is relative to ``start``."""

    __slots__ = ("buf", "start", "end", "pos", "chunk", "file")

    def __init__(self, buf, start: int = 0, end: int | None = None, *, chunk: str | None = None,
                 file: str | None = None) -> None:
        self.buf = buf if isinstance(buf, memoryview) else memoryview(buf)
        self.start = start
        self.end = len(self.buf) if end is None else end
        self.pos = 0
        self.chunk = chunk
        self.file = file

    # -- errors -------------------------------------------------------------
    def error(self, reason: str, offset: int | None = None, cls=FormatError) -> BeamError:
        return cls(reason, file=self.file, chunk=self.chunk,
                   offset=self.pos if offset is None else offset)

    def need(self, n: int, what: str = "data") -> None:
        if n < 0 or self.start + self.pos + n > self.end:
            raise TruncatedError(
                f"{what} needs {n} bytes, {self.remaining} left",
                file=self.file, chunk=self.chunk, offset=self.pos)

    # -- state --------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def remaining(self) -> int:
        return self.end - self.start - self.pos

    def at_end(self) -> bool:
        return self.start + self.pos >= self.end

    # -- reads --------------------------------------------------------------
    def u8(self, what: str = "byte") -> int:
        self.need(1, what)
        v = self.buf[self.start + self.pos]
        self.pos += 1
        return v

    def u16(self, what: str = "u16") -> int:
        self.need(2, what)
        v = _U16.unpack_from(self.buf, self.start + self.pos)[0]
        self.pos += 2
        return v

    def u32(self, what: str = "u32") -> int:
        self.need(4, what)
        v = _U32.unpack_from(self.buf, self.start + self.pos)[0]
        self.pos += 4
        return v

    def i32(self, what: str = "i32") -> int:
        self.need(4, what)
        v = _I32.unpack_from(self.buf, self.start + self.pos)[0]
        self.pos += 4
        return v

    def take(self, n: int, what: str = "data") -> memoryview:
        self.need(n, what)
        a = self.start + self.pos
        self.pos += n
        return self.buf[a:a + n]

    def rest(self) -> memoryview:
        a = self.start + self.pos
        self.pos = self.end - self.start
        return self.buf[a:self.end]

    def count(self, n: int, record_size: int, what: str = "table") -> int:
        """Check that ``n`` records of ``record_size`` bytes fit in what is left; return n."""
        if n * record_size > self.remaining:
            raise self.error(
                f"{what} claims {n} entries ({n * record_size} bytes) but only "
                f"{self.remaining} bytes remain", cls=TruncatedError)
        return n


def read_file(path: str, limit: int) -> bytes:
    """The bytes of the file ``path``, at most ``limit`` of them.

    Raises :class:`~beaminspect.errors.ReadError` when the system cannot read the file
    and :class:`~beaminspect.errors.LimitError` when it is larger than ``limit`` (told
    by its size before reading, or by reading when the size is unknown or grows).
    """
    try:
        with open(path, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise LimitError(f"file is {size} bytes, larger than the {limit} accepted",
                                 file=path, offset=0)
            # Ask for the size the file has now (plus one byte, to see it grow), not for
            # the limit: a read of ``limit + 1`` bytes allocates that much first.  A pipe
            # reports size 0.
            want = size + 1
            parts: list[bytes] = []
            total = 0
            while total <= limit:
                chunk = fh.read(min(want, limit + 1 - total))
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
                want = max(want - len(chunk), 65536)
    except OSError as e:
        raise ReadError(e.strerror or str(e), file=path) from None
    if total > limit:
        raise LimitError(f"file larger than {limit} bytes", file=path)
    return parts[0] if len(parts) == 1 else b"".join(parts)
