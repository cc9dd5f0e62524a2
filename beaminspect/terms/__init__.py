"""Erlang terms: their Python types, the external term format (ETF), text, JSON, order.

One module per concern, all re-exported here: :mod:`~beaminspect.terms.types` (the term
types and :func:`exact_key`), :mod:`~beaminspect.terms.etf` (the decoder),
:mod:`~beaminspect.terms.printer` (text), :mod:`~beaminspect.terms.jsonmap`
(:func:`to_json`), :mod:`~beaminspect.terms.order` (term order) and
:mod:`~beaminspect.terms.source` (Erlang source terms: ``.app``, ``.appup``, ``sys.config``).

Reading
=======
:func:`decode` reads a whole ``term_to_binary`` result (version byte 131, optionally the
compressed form ``131, 80, u32 size, zlib``); :func:`decode_at` reads one term body (no
version byte) at a position, for callers that walk tables of terms.  Every problem in
the input raises a :class:`~beaminspect.errors.BeamError` subclass carrying the chunk
and the offset (``base_offset`` + the position in the data): ``TruncatedError`` when
bytes are missing, ``FormatError`` for invalid values, ``LimitError`` for nesting deeper
than ``max_depth`` or a compressed size above ``max_size``, ``UnsupportedError`` for
``LOCAL_EXT``.  The decoder is iterative (no Python recursion) and checks every length
and count against the bytes left before allocating anything.  For inputs above 256 KiB
the cyclic garbage collector is paused while decoding (it would otherwise rescan the
many new, acyclic containers over and over).

Python types
============
==========================  ===========================================================
Erlang                      Python
==========================  ===========================================================
atom                        :class:`Atom` (a ``str`` subclass; ``true`` is ``Atom("true")``)
integer                     ``int``
float                       ``float``
tuple                       ``tuple``
proper list, string, ``[]`` ``list`` (a string is a list of ints, as in Erlang)
improper list               :class:`ImproperList` (``items`` tuple, non-list ``tail``)
binary                      ``bytes``
bitstring                   :class:`BitBinary` (``bits`` used in the last byte, 1..7)
map                         :class:`Map` (immutable, keeps decode order)
pid, port, reference        :class:`Pid`, :class:`Port`, :class:`Reference`
``fun M:F/A``               :class:`ExportFun`
local fun                   :class:`LocalFun`
==========================  ===========================================================

A list whose tail is itself a list is flattened (``[1|[2]]`` is ``[1, 2]``); a
bitstring with 8 bits in its last byte is a binary; unused bits of a bitstring's last
byte are cleared.

JSON mapping (:func:`to_json`)
==============================
One JSON value per term, lossless, with a single tag key for everything that is not a
list, an atom or a number:

- integer -> JSON number when ``-(2**53 - 1) <= n <= 2**53 - 1``, else
  ``{"int": "<decimal digits>"}``
- float -> JSON number (always finite)
- atom -> JSON string (``true``/``false``/``undefined`` stay strings)
- list -> JSON array (a string is an array of numbers)
- improper list -> ``{"improper_list": [items...], "tail": <tail>}``
- tuple -> ``{"tuple": [elements...]}``
- map -> ``{"map": [[key, value], ...]}`` in decode order
- binary -> ``{"binary": "<text>", "encoding": "utf8"}`` when the bytes are valid UTF-8,
  else ``{"binary": "<base64>", "encoding": "base64"}``
- bitstring -> ``{"bitstring": "<base64 of the bytes>", "bits": <bits in last byte>}``
- pid -> ``{"pid": {"node": "<atom>", "id": n, "serial": n, "creation": n}}``
- port -> ``{"port": {"node": "<atom>", "id": n, "creation": n}}``
- reference -> ``{"reference": {"node": "<atom>", "creation": n, "ids": [n, ...]}}``
- ``fun M:F/A`` -> ``{"fun": {"module": "<atom>", "function": "<atom>", "arity": n}}``
- local fun -> ``{"fun": {"module": ..., "arity": n|null, "index": n, "uniq": "<hex>"|n,
  "old_index": n, "old_uniq": n, "md5": "<hex>"|null, "pid": {pid object},
  "free_vars": [terms...]}}`` (told apart from an export fun by the absent ``"function"``)

Text and order
==============
:func:`format_term` prints a term as ``io_lib:format("~w", [T])`` does on OTP 25: atoms
quoted and escaped as ``~w`` does, floats in the shortest form that reads back, strings
as lists of integers, maps of up to 32 pairs in map-key order and larger maps in reverse
decode order (``term_to_binary`` writes a large map's hash order reversed), pids, ports
and references with node number 0 (the node table index is not in the data).
:func:`term_sort_key` (and :func:`compare_terms`) give Erlang's term order: number <
atom < reference < fun < port < pid < tuple < map < nil < list < bitstring.
"""


from beaminspect.terms.etf import (COMPRESSED, DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE,
                                   VERSION_MAGIC, decode, decode_at)
from beaminspect.terms.jsonmap import to_json
from beaminspect.terms.order import compare_terms, exact_sort_key, term_sort_key
from beaminspect.terms.printer import format_term
from beaminspect.terms.types import (Atom, BitBinary, ExportFun, ImproperList, LocalFun, Map,
                                     Pid, Port, Reference, exact_key)

__all__ = [
    "Atom", "ImproperList", "BitBinary", "Map", "Pid", "Port", "Reference", "ExportFun",
    "LocalFun", "decode", "decode_at", "format_term", "to_json", "term_sort_key",
    "compare_terms", "exact_key", "exact_sort_key", "VERSION_MAGIC", "COMPRESSED",
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE",
]
