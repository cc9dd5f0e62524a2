"""The module model: a lazy view of one ``.beam`` file.

:func:`load` reads the file and walks its chunk directory; each chunk is decoded on
first use of the property that needs it, and cached.  Every decoding problem raises a
:class:`~beaminspect.errors.BeamError` naming the file, the chunk and the offset.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from beaminspect.format import chunks as C
from beaminspect.format.container import MAX_FILE_SIZE, ChunkInfo, Container, read_container
from beaminspect.errors import BeamWarning, FormatError
from beaminspect.format.md5 import module_md5
from beaminspect.format.reader import read_file
from beaminspect.terms import Atom
from beaminspect.terms.etf import tuple_head_atoms

if TYPE_CHECKING:  # pragma: no cover
    from beaminspect.code.disasm import Function

class BeamModule:
    """One compiled module.  Construct with :func:`load`."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.file = container.file

    def __repr__(self) -> str:
        return f"<BeamModule {self.name} from {self.file}>"

    # -- container ----------------------------------------------------------
    @property
    def size(self) -> int:
        """Size of the (inflated) file in bytes."""
        return len(self.container.data)

    @property
    def stored_size(self) -> int:
        """Size of the file as stored: the gzip stream's when it is compressed."""
        n = self.container.stored_size
        return n if n >= 0 else len(self.container.data)

    @property
    def compressed(self) -> bool:
        """True when the file on disk was gzip-compressed."""
        return self.container.compressed

    @property
    def chunks(self) -> tuple[ChunkInfo, ...]:
        """The chunk directory, in file order."""
        return self.container.chunks

    @property
    def chunk_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.container.chunks)

    def has_chunk(self, chunk_id: str) -> bool:
        return self.container.find(chunk_id) is not None

    def raw_chunk(self, chunk_id: str) -> bytes | None:
        """The data of a chunk (any id, known or not), or None when absent."""
        info = self.container.find(chunk_id)
        return None if info is None else bytes(self.container.view(info))

    def _view(self, chunk_id: str, required: bool = True):
        info = self.container.find(chunk_id)
        if info is None:
            if required:
                raise FormatError(f"missing chunk {chunk_id}", file=self.file, chunk=chunk_id)
            return None
        return self.container.view(info)

    @property
    def warnings(self) -> tuple[BeamWarning, ...]:
        extra = []
        types = self.container.find("Type")
        if types is not None:
            if "types" in self.__dict__ or types.size < 4:
                # Decoded already, or too short for a version (decoding raises as before).
                version, known = self.types.version, self.types.known
            else:
                # Only the version matters here: read it without decoding the table.
                version = int.from_bytes(self.container.view(types)[:4], "big")
                known = C.type_version_known(version)
            if not known:
                extra.append(BeamWarning(f"Type chunk version {version} is not known; "
                                         "type information is ignored", chunk="Type", offset=0))
        return self.container.warnings + tuple(extra)

    # -- atoms and tables ---------------------------------------------------
    @cached_property
    def atoms(self) -> tuple[str, ...]:
        """The atom table; ``atoms[0]`` is atom 1, the module name."""
        view = self._view("AtU8", required=False)
        if view is not None:
            return C.decode_atoms(view, "AtU8", self.file)
        view = self._view("Atom", required=False)
        if view is not None:
            return C.decode_atoms(view, "Atom", self.file)
        raise FormatError("missing atom table (no AtU8 or Atom chunk)", file=self.file, chunk="AtU8")

    @property
    def name(self) -> str:
        return self.atoms[0]

    @cached_property
    def exports(self) -> tuple[C.FunctionEntry, ...]:
        return C.decode_functions(self._view("ExpT"), self.atoms, "ExpT", self.file)

    @cached_property
    def locals(self) -> tuple[C.FunctionEntry, ...]:
        view = self._view("LocT", required=False)
        return () if view is None else C.decode_functions(view, self.atoms, "LocT", self.file)

    @cached_property
    def imports(self) -> tuple[C.Import, ...]:
        return C.decode_imports(self._view("ImpT"), self.atoms, self.file)

    @cached_property
    def lambdas(self) -> tuple[C.Lambda, ...]:
        view = self._view("FunT", required=False)
        return () if view is None else C.decode_lambdas(view, self.atoms, self.file)

    @cached_property
    def literals(self) -> C.LiteralTable | tuple:
        """The literal table (a sequence; each literal is decoded on first access)."""
        view = self._view("LitT", required=False)
        if view is None:
            return ()
        data = C.literal_table_bytes(view, self.file)
        base = 4 if data.obj is view.obj else 0
        return C.LiteralTable(data, self.file, base)

    @cached_property
    def strings(self) -> bytes:
        """The StrT string table (raw bytes)."""
        view = self._view("StrT", required=False)
        return b"" if view is None else bytes(view)

    @cached_property
    def code_header(self) -> C.CodeHeader:
        return C.decode_code_header(self._view("Code"), self.file)

    @property
    def code(self) -> memoryview:
        """The Code chunk's data (header included)."""
        return self._view("Code")

    @cached_property
    def line_table(self) -> C.LineTable | None:
        view = self._view("Line", required=False)
        if view is None:
            return None
        table = C.decode_lines(view, self.file)
        if table.names:
            table = C.LineTable(table.version, table.flags, table.instruction_count, table.items,
                                (self.name + ".erl",) + table.names[1:])
        return table

    @cached_property
    def types(self) -> C.TypeTable:
        view = self._view("Type", required=False)
        if view is None:
            return C.TypeTable(0, (), known=False)
        return C.decode_types(view, self.file)

    # -- term chunks --------------------------------------------------------
    def _term_chunk(self, chunk_id: str):
        view = self._view(chunk_id, required=False)
        return None if view is None else C.decode_term_chunk(view, chunk_id, self.file)

    @cached_property
    def attributes(self) -> list:
        """The Attr chunk as ``beam_lib`` returns it: a list of ``(key, values)`` tuples."""
        value = self._term_chunk("Attr")
        if not isinstance(value, list):
            return [] if value is None else value
        # beam_lib sorts by key (stably) and merges the values of repeated keys.
        pairs = [x for x in value if isinstance(x, tuple) and len(x) == 2]
        if len(pairs) != len(value):
            return value
        merged: list = []
        for key, val in sorted(pairs, key=lambda kv: _term_order_key(kv[0])):
            if merged and merged[-1][0] == key and isinstance(val, list) and \
                    isinstance(merged[-1][1], list):
                merged[-1] = (key, merged[-1][1] + val)
            else:
                merged.append((key, val))
        return merged

    @cached_property
    def compile_info(self) -> list:
        """The CInf chunk: a list of ``(key, value)`` tuples (options, version, source)."""
        value = self._term_chunk("CInf")
        return [] if value is None else value

    @cached_property
    def meta(self):
        return self._term_chunk("Meta")

    @cached_property
    def docs(self):
        """The EEP-48 ``Docs`` chunk term, or None."""
        return self._term_chunk("Docs")

    @cached_property
    def exck(self):
        """Elixir's ``ExCk`` chunk term, or None."""
        return self._term_chunk("ExCk")

    @cached_property
    def debug_info(self):
        """The ``Dbgi`` chunk (``{debug_info_v1, Backend, Data}``) or the pre-OTP-20
        ``Abst`` chunk, or None."""
        value = self._term_chunk("Dbgi")
        if value is None:
            value = self._term_chunk("Abst")
        return value

    @cached_property
    def debug_info_backend(self) -> str | None:
        """The backend that wrote the ``Dbgi`` chunk (``erl_abstract_code``,
        ``elixir_erl``...), read from the chunk's first bytes without decoding the rest;
        None without a readable ``Dbgi`` chunk."""
        view = self._view("Dbgi", required=False)
        if view is None:
            return None
        head = tuple_head_atoms(view, 2)
        return head[1] if head is not None and head[0] == "debug_info_v1" else None

    @cached_property
    def abstract_code(self) -> list | None:
        """The Erlang abstract forms from debug info, when present and not encrypted."""
        dbgi = self.debug_info
        if isinstance(dbgi, tuple) and len(dbgi) == 3 and dbgi[0] == "debug_info_v1":
            backend, data = dbgi[1], dbgi[2]
            if backend == "erl_abstract_code" and isinstance(data, tuple) and len(data) == 2 \
                    and isinstance(data[0], list):
                return data[0]
            return None
        if isinstance(dbgi, tuple) and len(dbgi) == 2 and dbgi[0] == "raw_abstract_v1":
            return dbgi[1] if isinstance(dbgi[1], list) else None
        return None

    # -- attribute helpers --------------------------------------------------
    def attribute(self, key: str) -> list:
        """All values of an attribute, concatenated (``-behaviour`` may appear twice)."""
        out: list = []
        for item in self.attributes:
            if isinstance(item, tuple) and len(item) == 2 and item[0] == key:
                v = item[1]
                out.extend(v if isinstance(v, list) else [v])
        return out

    @property
    def behaviours(self) -> list[str]:
        return [str(b) for b in self.attribute("behaviour") + self.attribute("behavior")]

    @property
    def vsn(self):
        """The ``vsn`` attribute's value (a list), or None."""
        v = self.attribute("vsn")
        return v if v else None

    @cached_property
    def on_load(self) -> tuple[str, int] | None:
        """The ``-on_load`` function.  The compiler marks it with an ``on_load``
        instruction at the start of the function (finding it disassembles the code)."""
        for v in self.attribute("on_load"):
            if isinstance(v, tuple) and len(v) == 2:
                return (str(v[0]), v[1])
        for fn in self.functions:
            for ins in fn.instructions:
                if ins.name == "on_load":
                    return (fn.name, fn.arity)
        return None

    @property
    def nifs(self) -> list[tuple[str, int]]:
        return [(str(v[0]), v[1]) for v in self.attribute("nifs")
                if isinstance(v, tuple) and len(v) == 2]

    def compile_value(self, key: str):
        for item in self.compile_info:
            if isinstance(item, tuple) and len(item) == 2 and item[0] == key:
                return item[1]
        return None

    @property
    def compiler_version(self) -> str | None:
        v = self.compile_value("version")
        return _text(v)

    @property
    def compile_options(self) -> list:
        v = self.compile_value("options")
        return v if isinstance(v, list) else []

    @property
    def source(self) -> str | None:
        return _text(self.compile_value("source"))

    # -- derived ------------------------------------------------------------
    @cached_property
    def md5(self) -> bytes:
        """The module MD5 (16 bytes), as ``module_info(md5)`` returns it."""
        return module_md5(self.container)

    @property
    def literal_count(self) -> int:
        """The number of literals; without decoding (or, mostly, inflating) the table
        unless :attr:`literals` has been read already."""
        if "literals" in self.__dict__:
            return len(self.literals)
        view = self._view("LitT", required=False)
        return 0 if view is None else C.literal_count(view, self.file)

    @cached_property
    def functions(self) -> "tuple[Function, ...]":
        """The disassembled functions (see :mod:`beaminspect.code.disasm`)."""
        from beaminspect.code.disasm import disassemble
        return disassemble(self)

    def decode_all(self, *, code: bool = True) -> "BeamModule":
        """Decode every chunk now (and disassemble the code unless ``code`` is False), so
        that any problem in the file is raised here.  Returns self."""
        self.atoms, self.exports, self.locals, self.imports, self.lambdas
        for _ in self.literals:
            pass
        self.strings, self.code_header, self.line_table, self.types
        self.attributes, self.compile_info, self.meta, self.docs, self.exck, self.debug_info
        self.md5
        if code:
            self.functions
        return self

    def function(self, name: str, arity: int) -> "Function | None":
        for f in self.functions:
            if f.name == name and f.arity == arity:
                return f
        return None


def _term_order_key(t):
    from beaminspect.terms import term_sort_key
    return term_sort_key(t)


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return str(v)
    if isinstance(v, list) and all(isinstance(c, int) for c in v):
        try:
            return "".join(map(chr, v))
        except (ValueError, OverflowError):
            return None
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    return None


def read_file_bytes(path: str) -> bytes:
    """The bytes of a ``.beam`` file (at most :data:`MAX_FILE_SIZE`); raises
    :class:`~beaminspect.errors.ReadError` or :class:`~beaminspect.errors.LimitError`."""
    return read_file(path, MAX_FILE_SIZE)


def load(source, *, file: str | None = None) -> BeamModule:
    """Open a ``.beam`` file.

    ``source`` is a path (str or os.PathLike) or the file's bytes.  Only the chunk
    directory is read now; chunks are decoded on first use.  Raises
    :class:`~beaminspect.errors.BeamError`.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = file or "<bytes>"
    else:
        name = file or os.fspath(source)
        data = read_file_bytes(os.fspath(source))
    return BeamModule(read_container(data, name))


__all__ = ["BeamModule", "load", "Atom"]
