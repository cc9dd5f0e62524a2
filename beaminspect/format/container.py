"""The IFF container: ``FOR1`` size ``BEAM``, then chunks (id, u32 length, data, padding).

:func:`read_container` walks the chunk directory only; no chunk is decoded here.
A whole file may be gzip-compressed (``erlc +compressed``, ``beam_lib:strip``); it is
inflated with a hard size limit before the walk.  Offsets in the directory are
positions in the (inflated) file.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from beaminspect.errors import BeamWarning, FormatError, LimitError, NotBeamError, TruncatedError

#: The largest (inflated) file accepted, in bytes.
MAX_FILE_SIZE = 256 * 1024 * 1024
#: The largest content a gzip-compressed file may inflate to (the biggest real modules
#: are a few MB; a gzip bomb must be refused before it exhausts memory).
MAX_INFLATED_SIZE = 32 * 1024 * 1024

_HDR = struct.Struct(">4sI4s")
_CHUNK = struct.Struct(">4sI")


@dataclass(frozen=True)
class ChunkInfo:
    """One entry of the chunk directory: the id, the offset of the chunk's data in the
    file and its length (without padding)."""

    id: str
    offset: int
    size: int

    def to_dict(self) -> dict:
        return {"id": self.id, "offset": self.offset, "size": self.size}


@dataclass(frozen=True)
class Container:
    """A file's bytes and its chunk directory."""

    file: str
    data: bytes
    compressed: bool
    chunks: tuple[ChunkInfo, ...]
    warnings: tuple[BeamWarning, ...] = field(default=())
    #: Bytes of the file as stored (the gzip stream when ``compressed``).
    stored_size: int = -1

    def __post_init__(self) -> None:
        # id -> the last chunk with that id (later entries overwrite earlier ones).
        object.__setattr__(self, "_by_id", {c.id: c for c in self.chunks})

    def find(self, chunk_id: str) -> ChunkInfo | None:
        """The chunk the loader would use for this id (the last one, as the loader does)."""
        return self._by_id.get(chunk_id)

    def view(self, info: ChunkInfo) -> memoryview:
        return memoryview(self.data)[info.offset:info.offset + info.size]


def gunzip(data: bytes, file: str, limit: int = MAX_INFLATED_SIZE) -> bytes:
    """Inflate a gzip file, refusing output beyond ``limit`` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise FormatError(f"corrupt gzip data: {e}", file=file, offset=0) from None
    except MemoryError:
        raise LimitError("not enough memory to inflate the gzip data", file=file,
                         offset=0) from None
    if len(out) > limit:
        raise LimitError(f"gzip data inflates beyond {limit} bytes", file=file, offset=0)
    if not d.eof:
        raise TruncatedError("gzip data ends before its end marker", file=file, offset=len(data))
    return out


def _chunk_id(raw: bytes) -> str:
    return raw.decode("latin-1")


def read_container(data: bytes, file: str = "<bytes>") -> Container:
    """Walk the chunk directory of ``data``.

    Raises :class:`NotBeamError` when the bytes are not a BEAM container at all, and
    :class:`TruncatedError` when a chunk runs past the end of the file.
    """
    compressed = False
    stored_size = len(data)
    if data[:2] == b"\x1f\x8b":
        data = gunzip(bytes(data), file)
        compressed = True
    elif len(data) > MAX_FILE_SIZE:
        raise LimitError(f"file is larger than {MAX_FILE_SIZE} bytes", file=file, offset=0)
    if len(data) < 12:
        if data[:4] != b"FOR1"[:len(data[:4])] or len(data) == 0:
            raise NotBeamError("not a BEAM file (no FOR1 header)", file=file, offset=0)
        raise TruncatedError(f"file is {len(data)} bytes, shorter than the 12-byte header",
                             file=file, offset=0)
    magic, form_size, form_type = _HDR.unpack_from(data, 0)
    if magic != b"FOR1":
        raise NotBeamError("not a BEAM file (no FOR1 header)", file=file, offset=0)
    if form_type != b"BEAM":
        raise NotBeamError(f"not a BEAM file: IFF form type is {form_type!r}, not 'BEAM'",
                           file=file, offset=8)
    warnings: list[BeamWarning] = []
    end = 8 + form_size
    if end > len(data):
        raise TruncatedError(f"header claims {form_size + 8} bytes but the file has {len(data)}",
                             file=file, offset=4)
    if end < len(data):
        warnings.append(BeamWarning(f"{len(data) - end} bytes after the end of the form are ignored",
                                    offset=end))
    chunks: list[ChunkInfo] = []
    pos = 12
    seen: set[str] = set()
    while pos < end:
        if pos + 8 > end:
            raise TruncatedError("chunk header runs past the end of the file", file=file, offset=pos)
        raw_id, size = _CHUNK.unpack_from(data, pos)
        cid = _chunk_id(raw_id)
        padded = (size + 3) & ~3
        if pos + 8 + padded > end:
            # The loader requires the padded size to fit; the last chunk of some
            # hand-built files lacks padding, so accept an exact fit too.
            if pos + 8 + size > end:
                raise TruncatedError(
                    f"chunk size {size} runs past the end of the file ({end - pos - 8} bytes left)",
                    file=file, chunk=cid, offset=pos + 4)
            padded = size
            warnings.append(BeamWarning("the last chunk lacks its padding to 4 bytes "
                                        "(the loader refuses such a file)", chunk=cid, offset=pos))
        if cid in seen:
            warnings.append(BeamWarning(f"duplicate chunk {cid}: the last one is used", chunk=cid,
                                        offset=pos))
        seen.add(cid)
        chunks.append(ChunkInfo(cid, pos + 8, size))
        pos += 8 + padded
    return Container(file, bytes(data), compressed, tuple(chunks), tuple(warnings),
                     stored_size)
