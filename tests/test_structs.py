"""The hand-written decoders agree with the construct declarations on every sample."""

import pytest

import beaminspect
from beaminspect.format import structs
from corpus import SAMPLE_BEAMS
from otp import OTP_BEAMS

FILES = SAMPLE_BEAMS + OTP_BEAMS[::25]


@pytest.mark.parametrize("path", FILES)
def test_hand_decoders_match_construct(path):
    m = beaminspect.load(path)
    data = m.container.data
    if not m.compressed:
        with open(path, "rb") as f:
            assert f.read() == data
    hdr = structs.FileHeader.parse(data)
    assert hdr.form_size == len(data) - 8
    pos = 12
    for c in m.chunks:
        ch = structs.ChunkHeader.parse(data[pos:pos + 8])
        assert ch.id.decode("latin-1") == c.id and ch.size == c.size and pos + 8 == c.offset
        pos += 8 + ((c.size + 3) & ~3)
    code = structs.CodeHeader.parse(m.raw_chunk("Code"))
    h = m.code_header
    assert (code.header_size, code.instruction_set, code.max_opcode, code.label_count,
            code.function_count) == (h.header_size, h.instruction_set, h.max_opcode,
                                     h.label_count, h.function_count)
    exp = structs.FunctionTable.parse(m.raw_chunk("ExpT"))
    assert [(m.atoms[e.function - 1], e.arity, e.label) for e in exp.entries] == \
        [tuple(e) for e in m.exports]
    imp = structs.ImportTable.parse(m.raw_chunk("ImpT"))
    assert [(m.atoms[e.module - 1], m.atoms[e.function - 1], e.arity) for e in imp.entries] == \
        [tuple(i) for i in m.imports]
    if m.has_chunk("FunT"):
        lam = structs.LambdaTable.parse(m.raw_chunk("FunT"))
        assert [(m.atoms[e.function - 1], e.arity, e.label, e.index, e.num_free, e.old_uniq)
                for e in lam.entries] == [tuple(x) for x in m.lambdas]
    atoms = structs.AtomTable.parse(m.raw_chunk("AtU8"))
    assert tuple(a.text.decode("utf-8") for a in atoms.atoms) == m.atoms
    if m.has_chunk("Line"):
        lh = structs.LineHeader.parse(m.raw_chunk("Line"))
        assert lh.item_count + 1 == len(m.line_table.items)
        assert lh.name_count + 1 == len(m.line_table.names)
