"""Encodings OTP 25 does not write: OTP 28's long-atom AtU8 and uncompressed LitT, made by
rewriting real files; Type chunk versions 1 to 4 and unknown ones; unknown chunks."""

import struct
import zlib

import pytest

import beaminspect
from beaminspect.format.chunks import decode_types
from corpus import SAMPLE_BEAMS
from otp import OTP_BEAMS

FILES = [p for p in SAMPLE_BEAMS if "/ebin/" in p] + OTP_BEAMS[::40]


def _chunks(data: bytes):
    pos, out = 12, []
    while pos < len(data):
        cid, size = struct.unpack_from(">4sI", data, pos)
        out.append((cid.decode("latin-1"), data[pos + 8:pos + 8 + size]))
        pos += 8 + ((size + 3) & ~3)
    return out


def _build(chunks) -> bytes:
    body = b"BEAM"
    for cid, data in chunks:
        body += cid.encode("latin-1") + struct.pack(">I", len(data)) + data + b"\0" * ((-len(data)) % 4)
    return b"FOR1" + struct.pack(">I", len(body)) + body


def _compact_u(n: int) -> bytes:
    if n < 16:
        return bytes([n << 4])
    if n < 2048:
        return bytes([((n >> 8) << 5) | 0x08, n & 0xFF])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([((len(raw) - 2) << 5) | 0x18]) + raw


def to_otp28(data: bytes) -> bytes:
    out = []
    for cid, body in _chunks(data):
        if cid == "AtU8":
            (count,) = struct.unpack_from(">i", body, 0)
            pos, atoms = 4, []
            for _ in range(count):
                n = body[pos]
                atoms.append(body[pos + 1:pos + 1 + n])
                pos += 1 + n
            body = struct.pack(">i", -count) + b"".join(_compact_u(len(a)) + a for a in atoms)
        elif cid == "LitT":
            table = zlib.decompress(body[4:])
            body = struct.pack(">I", 0) + table
        out.append((cid, body))
    return _build(out)


@pytest.mark.parametrize("path", FILES)
def test_otp28_atoms_and_literals(path):
    orig = beaminspect.load(path)
    if orig.compressed:
        pytest.skip("gzip file")
    new = beaminspect.load(to_otp28(orig.container.data), file="otp28.beam")
    assert new.atoms == orig.atoms
    assert list(new.literals) == list(orig.literals)
    assert new.exports == orig.exports and new.imports == orig.imports
    assert [f.mfa for f in new.functions] == [f.mfa for f in orig.functions]


def test_long_atom_lengths():
    long_atom = "å" * 255                       # 510 bytes of UTF-8: a two-byte length
    atoms = [b"m", long_atom.encode()]
    at = struct.pack(">i", -2) + b"".join(_compact_u(len(a)) + a for a in atoms)
    m = beaminspect.load(_build([("AtU8", at)]), file="x")
    assert m.atoms == ("m", long_atom)


def test_unknown_chunks_are_kept_raw():
    path = FILES[0]
    data = open(path, "rb").read()
    chunks = _chunks(data) + [("Xyz1", b"\x01\x02\x03")]
    m = beaminspect.load(_build(chunks), file="x")
    assert "Xyz1" in m.chunk_ids and m.raw_chunk("Xyz1") == b"\x01\x02\x03"
    assert m.md5 == beaminspect.load(path).md5      # unknown chunks are not hashed


def _types(version: int, entries: bytes, count: int) -> memoryview:
    return memoryview(struct.pack(">II", version, count) + entries)


def test_type_chunk_version_1():
    any_bits = (1 << 13) - 1
    ent = struct.pack(">Hqq", any_bits, 1, 0)                     # min > max: no range
    ent += struct.pack(">Hqq", 1 << 6, 0, 255)                    # integer 0..255
    t = decode_types(_types(1, ent, 2), "x")
    assert t.known and str(t.entries[0]) == "any"
    assert str(t.entries[1]) == "integer(0..255)"


def test_type_chunk_versions_2_to_4():
    # v3: integer (bit 5) with both bounds (bits 12, 13); bitstring (bit 1) with unit (bit 14)
    v3 = struct.pack(">H", (1 << 12) - 1)
    v3 += struct.pack(">Hqq", (1 << 5) | (1 << 12) | (1 << 13), -5, 5)
    v3 += struct.pack(">HB", (1 << 1) | (1 << 14), 7)
    t = decode_types(_types(3, v3, 3), "x")
    assert [str(e) for e in t.entries] == ["any", "integer(-5..5)", "bitstring(unit:8)"]
    # v2: the same shifted by the bs_context bit; only an upper bound
    v2 = struct.pack(">H", (1 << 13) - 1) + struct.pack(">Hq", (1 << 6) | (1 << 14), 9)
    t = decode_types(_types(2, v2, 2), "x")
    assert str(t.entries[1]) == "integer(-inf..9)"
    # v4: record is bit 12, bounds move to 13 and 14
    v4 = struct.pack(">H", (1 << 13) - 1) + struct.pack(">H", 1 << 12)
    v4 += struct.pack(">Hq", (1 << 5) | (1 << 13), 3)
    t = decode_types(_types(4, v4, 3), "x")
    assert [str(e) for e in t.entries] == ["any", "record", "integer(3..+inf)"]


def test_unknown_type_version_is_a_warning_not_an_error():
    atoms = struct.pack(">i", 1) + b"\x01m"
    m = beaminspect.load(_build([("AtU8", atoms), ("Type", struct.pack(">II", 99, 0))]), file="x")
    assert not m.types.known and m.types.version == 99
    assert any(w.chunk == "Type" for w in m.warnings)


def test_truncated_type_entries():
    with pytest.raises(beaminspect.BeamError) as ei:
        decode_types(_types(3, struct.pack(">H", 1 << 12), 1), "x")
    assert ei.value.chunk == "Type"
