"""Bad input: every problem is a BeamError naming the file, the chunk and the offset."""

import os
import struct
import zlib

import pytest

import beaminspect
from beaminspect import BeamError
from beaminspect.errors import LimitError, NotBeamError, TruncatedError
from corpus import SAMPLE_BEAMS

PLAIN = [p for p in SAMPLE_BEAMS if "/variants/compressed/" not in p][:12]


def _load_all(data: bytes, code: bool = True):
    return beaminspect.load(data, file="t.beam").decode_all(code=code)


def _chunk_table(data: bytes):
    pos, out = 12, []
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from(">4sI", data, pos)
        out.append((cid.decode("latin-1"), pos, size))
        pos += 8 + ((size + 3) & ~3)
    return out


def _code_available() -> bool:
    try:
        import beaminspect.code.disasm  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("path", PLAIN)
def test_truncation_at_every_chunk_boundary(path):
    data = open(path, "rb").read()
    for cid, pos, size in _chunk_table(data):
        for cut in (pos, pos + 4, pos + 8, pos + 8 + size // 2):
            if cut >= len(data):
                continue
            with pytest.raises(BeamError) as ei:
                _load_all(data[:cut], code=_code_available())
            assert ei.value.file == "t.beam"
            assert str(ei.value).startswith("t.beam: ")


@pytest.mark.parametrize("path", PLAIN)
def test_truncation_with_fixed_form_size(path):
    """Cut inside each chunk but keep the header consistent: the chunk's own decoder
    must notice, and name the chunk."""
    data = open(path, "rb").read()
    for cid, pos, size in _chunk_table(data):
        if size < 8 or cid not in ("AtU8", "ImpT", "ExpT", "LocT", "FunT", "LitT", "Line", "Type",
                                   "Attr", "CInf", "Code"):
            continue
        cut = size // 2
        new = bytearray(data[:pos + 8 + cut])
        struct.pack_into(">I", new, pos + 4, cut)
        new += b"\0" * ((-len(new)) % 4)
        new += data[pos + 8 + ((size + 3) & ~3):]
        struct.pack_into(">I", new, 4, len(new) - 8)
        try:
            _load_all(bytes(new), code=_code_available())
        except BeamError as e:
            assert e.file == "t.beam"
            assert e.chunk is not None, str(e)
        # A cut that still decodes (a LitT cut inside the zlib stream cannot) is fine too.


@pytest.mark.parametrize("path", PLAIN)
def test_flipped_chunk_headers(path):
    data = open(path, "rb").read()
    for cid, pos, size in _chunk_table(data):
        for off in range(pos, pos + 8):
            for mask in (0x01, 0x80, 0xFF):
                new = bytearray(data)
                new[off] ^= mask
                try:
                    _load_all(bytes(new), code=False)
                except BeamError as e:
                    assert "t.beam" in str(e)


def test_not_a_beam():
    with pytest.raises(NotBeamError) as ei:
        beaminspect.load(b"hello world, not a beam", file="x.txt")
    assert str(ei.value) == "x.txt: at offset 0: not a BEAM file (no FOR1 header)"
    with pytest.raises(BeamError):
        beaminspect.load(b"", file="empty.beam")
    with pytest.raises(NotBeamError):
        beaminspect.load(b"FOR1\0\0\0\x04ELF\0", file="x")


def test_form_size_past_end():
    with pytest.raises(TruncatedError) as ei:
        beaminspect.load(b"FOR1\x7f\xff\xff\xffBEAM", file="x")
    assert ei.value.offset == 4


def test_counts_that_do_not_fit():
    atoms = struct.pack(">i", 1) + b"\x01m"
    imp = struct.pack(">I", 0xFFFFFFFF)
    data = _build([("AtU8", atoms), ("ImpT", imp)])
    m = beaminspect.load(data, file="x")
    assert m.name == "m"
    with pytest.raises(TruncatedError) as ei:
        m.imports
    assert ei.value.chunk == "ImpT"


def test_atom_index_out_of_range():
    atoms = struct.pack(">i", 1) + b"\x01m"
    exp = struct.pack(">IIII", 1, 7, 0, 2)
    m = beaminspect.load(_build([("AtU8", atoms), ("ExpT", exp)]), file="x")
    with pytest.raises(BeamError) as ei:
        m.exports
    assert ei.value.chunk == "ExpT" and ei.value.offset == 4
    assert "atom index 7 out of range" in str(ei.value)


def test_literal_table_claiming_gigabytes():
    lit = struct.pack(">I", 3 << 30) + zlib.compress(b"\0" * 100)
    m = beaminspect.load(_build([("AtU8", struct.pack(">i", 1) + b"\x01m"), ("LitT", lit)]),
                         file="x")
    with pytest.raises(LimitError) as ei:
        m.literals
    assert ei.value.chunk == "LitT"


def test_literal_zlib_bomb_is_bounded():
    bomb = zlib.compress(b"\0" * (200 * 1024 * 1024), 9)
    lit = struct.pack(">I", 1000) + bomb
    m = beaminspect.load(_build([("AtU8", struct.pack(">i", 1) + b"\x01m"), ("LitT", lit)]),
                         file="x")
    with pytest.raises(BeamError) as ei:
        m.literals
    assert ei.value.chunk == "LitT"


def test_corrupt_zlib():
    lit = struct.pack(">I", 100) + b"\x78\x9c" + os.urandom(40)
    m = beaminspect.load(_build([("AtU8", struct.pack(">i", 1) + b"\x01m"), ("LitT", lit)]),
                         file="x")
    with pytest.raises(BeamError) as ei:
        m.literals
    assert ei.value.chunk == "LitT"


def test_deeply_nested_attribute_term():
    depth = 200_000
    term = b"\x83" + b"\x6c\x00\x00\x00\x01" * depth + b"\x6a" + b"\x6a" * depth
    m = beaminspect.load(_build([("AtU8", struct.pack(">i", 1) + b"\x01m"), ("Attr", term)]),
                         file="x")
    with pytest.raises(LimitError) as ei:
        m.attributes
    assert ei.value.chunk == "Attr"


def test_gzip_bomb_is_bounded():
    import gzip
    bomb = gzip.compress(b"\0" * (300 * 1024 * 1024), 9)
    with pytest.raises(BeamError):
        beaminspect.load(bomb, file="bomb.beam")


def test_missing_file_is_a_beam_error(tmp_path):
    with pytest.raises(BeamError) as ei:
        beaminspect.load(str(tmp_path / "nope.beam"))
    assert "nope.beam" in str(ei.value)


def _build(chunks) -> bytes:
    body = b"BEAM"
    for cid, data in chunks:
        body += cid.encode() + struct.pack(">I", len(data)) + data + b"\0" * ((-len(data)) % 4)
    return b"FOR1" + struct.pack(">I", len(body)) + body


def _line_chunk(names: list[bytes], items: bytes) -> memoryview:
    body = struct.pack(">IIIII", 0, 0, 1, 1, len(names)) + items
    for n in names:
        body += struct.pack(">H", len(n)) + n
    return memoryview(body)


@pytest.mark.parametrize("index,loads", [(1, True), (2, True), (3, False)])
def test_line_file_switch_one_past_the_table(index, loads):
    """The loader counts the module's own file with the names and tests ``index <= count``,
    so one index past the name table loads (measured on OTP 25); two past is refused."""
    from beaminspect.format.chunks import decode_lines
    # a file switch (tag a = 2) to ``index``, then line 7 (tag i = 1)
    items = bytes([(index << 4) | 2, (7 << 4) | 1])
    view = _line_chunk([b"x.erl"], items)
    if loads:
        table = decode_lines(view, "t.beam")
        assert table.lookup(1) == (("x.erl" if index == 1 else "?"), 7)
    else:
        with pytest.raises(BeamError, match="file index 3 out of range"):
            decode_lines(view, "t.beam")
