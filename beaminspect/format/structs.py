"""The fixed-layout structures of a BEAM file, declared with construct.

These declarations are the readable specification; the hot paths in
:mod:`beaminspect.format.container` and :mod:`beaminspect.format.chunks` are written by hand over a
memoryview for speed, and the test suite checks that both agree on every sample.
Construct objects never leave this module's users (the tests).
"""

from construct import Array, Bytes, Const, Int8ub, Int32sb, Int32ub, Struct, this

FileHeader = Struct(
    "magic" / Const(b"FOR1"),
    "form_size" / Int32ub,          # file length - 8
    "form_type" / Const(b"BEAM"),
)

ChunkHeader = Struct(
    "id" / Bytes(4),
    "size" / Int32ub,               # data length, without the padding to 4 bytes
)

CodeHeader = Struct(
    "header_size" / Int32ub,        # 16 in every release so far
    "instruction_set" / Int32ub,    # 0
    "max_opcode" / Int32ub,         # highest opcode the module uses
    "label_count" / Int32ub,
    "function_count" / Int32ub,
)

FunctionRecord = Struct("function" / Int32ub, "arity" / Int32ub, "label" / Int32ub)
FunctionTable = Struct("count" / Int32ub, "entries" / Array(this.count, FunctionRecord))

ImportRecord = Struct("module" / Int32ub, "function" / Int32ub, "arity" / Int32ub)
ImportTable = Struct("count" / Int32ub, "entries" / Array(this.count, ImportRecord))

LambdaRecord = Struct(
    "function" / Int32ub, "arity" / Int32ub, "label" / Int32ub,
    "index" / Int32ub, "num_free" / Int32ub, "old_uniq" / Int32ub,
)
LambdaTable = Struct("count" / Int32ub, "entries" / Array(this.count, LambdaRecord))

# AtU8 before OTP 28: a positive count and one-byte lengths.
AtomEntry = Struct("length" / Int8ub, "text" / Bytes(this.length))
AtomTable = Struct("count" / Int32sb, "atoms" / Array(this.count, AtomEntry))

LineHeader = Struct(
    "version" / Int32ub,
    "flags" / Int32ub,
    "instruction_count" / Int32ub,
    "item_count" / Int32ub,
    "name_count" / Int32ub,
)

TypeHeader = Struct("version" / Int32ub, "count" / Int32ub)

LiteralHeader = Struct("uncompressed_size" / Int32ub)
