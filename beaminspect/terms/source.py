"""Erlang term *source* syntax: read and write the files ``file:consult/1`` reads.

``.app``, ``.appup``, ``.rel``, ``RELEASES`` and ``sys.config`` files are dot-terminated
Erlang terms.  :func:`parse_terms` reads them the way ``file:consult/1`` does
(``erl_scan`` + ``erl_parse:parse_term``) without evaluating anything: a variable, a
call, an operator, a ``fun`` or a record is a :class:`~beaminspect.errors.FormatError`
naming the file, the line, the column and the byte offset.

Values use the types of :mod:`beaminspect.terms`: :class:`Atom`, ``int``, ``float``,
``tuple``, ``list``, :class:`ImproperList`, ``bytes`` (binaries) and :class:`Map`.
Strings are lists of code points, exactly as ``file:consult/1`` returns them
(``"ab"`` is ``[97, 98]``); :func:`as_text` turns such a list back into a ``str``.

:func:`dump_terms` writes terms back as consult-readable text.  Like ``io:format("~p")``
it prints a list of printable code points as a ``"string"`` (which reads back as the
same list, so nothing is lost), and it also accepts Python ``str`` values as strings,
so callers can build terms (an appup, say) with ``str`` for versions.

Limits: input larger than :data:`MAX_TEXT_SIZE` bytes is refused, nesting deeper
than :data:`MAX_DEPTH` raises :class:`~beaminspect.errors.LimitError`; the parser
is iterative, so hostile input cannot exhaust the Python stack.

Bitstrings that are not whole bytes (``<<1:4>>``) become :class:`BitBinary`.
Not supported (refused with an error): ``fun M:F/A`` values (consult accepts them,
no term file needs them) and binaries nested in binary segments.
"""

from __future__ import annotations

import re
import struct
import sys

from beaminspect.errors import BeamError, FormatError, LimitError, ReadError, UnsupportedError
from beaminspect.terms.printer import RESERVED_WORDS, source_scalar_text, source_text
from beaminspect.terms.types import Atom, BitBinary, ImproperList, Map

__all__ = [
    "parse_terms", "parse_bytes", "parse_file", "as_text", "dump_terms", "dump_term",
    "MAX_DEPTH", "MAX_TEXT_SIZE",
]

MAX_DEPTH = 1000
MAX_TEXT_SIZE = 16 * 1024 * 1024
MAX_ATOM_LENGTH = 255

_SIMPLE_ESCAPES = {
    "n": 10, "r": 13, "t": 9, "v": 11, "b": 8, "f": 12, "e": 27, "s": 32, "d": 127,
}

# Latin-1 letters count as letters in erl_scan; anything beyond Latin-1 must be quoted.
_NAME_CHARS = "a-zA-Z0-9_@\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"
_ATOM_RE = re.compile(f"[a-z\u00df-\u00f6\u00f8-\u00ff][{_NAME_CHARS}]*")
_VAR_RE = re.compile(f"[A-Z_\u00c0-\u00d6\u00d8-\u00de][{_NAME_CHARS}]*")
_DIGITS_RE = re.compile(r"[0-9]+(?:_[0-9]+)*")
_FRACTION_RE = re.compile(r"\.[0-9]+(?:_[0-9]+)*")
_EXPONENT_RE = re.compile(r"[eE][+-]?[0-9]+(?:_[0-9]+)*")
# White space is every character up to space, and 128..160 (erl_scan's Latin-1 rule).
_SKIP_RE = re.compile(r"(?:[\x00-\x20\x80-\xa0]+|%[^\n]*)*")
_WS_CHARS = frozenset(chr(c) for c in list(range(0, 33)) + list(range(0x80, 0xA1)))
_PLAIN_STRING_RE = re.compile(r'[^"\\]*')
_PLAIN_QATOM_RE = re.compile(r"[^'\\]*")
_PUNCTUATION = sorted([
    "=:=", "=/=", "...", "<<", ">>", "=>", ":=", "::", "||", "->", "<-", "<=", "==",
    "/=", "=<", ">=", "++", "--", "..", "?=",
    "{", "}", "[", "]", "(", ")", ",", "|", "#", ":", "/", "-", "+", "*", "=", "<",
    ">", "!", "?", ";", ".",
], key=len, reverse=True)

# Token kinds
_INT, _FLOAT, _CHAR, _ATOM, _STRING, _VAR, _RESERVED, _PUNCT, _DOT, _EOF = range(10)

# The common tokens in one pattern (white space and comments first, then one named group
# per kind).  Anything it does not take -- floats, based or underscored integers, strings
# and quoted atoms with escapes, character literals, errors -- goes to the full scanner,
# which decides the same way the pattern would have.  The skip part can end only where
# _SKIP_RE ends (a comment runs to the end of its line, and no token starts with white
# space), so backtracking into it cannot produce a token from inside a comment, and
# costs linear time when no token matches.
_FAST_RE = re.compile(
    r"[\x00-\x20\x80-\xa0]*(?:%[^\n]*(?![^\n])[\x00-\x20\x80-\xa0]*)*(?:"
    f"(?P<a>{_ATOM_RE.pattern})"
    + "|(?P<p>" + "|".join(re.escape(p) for p in _PUNCTUATION if p != ".") + ")"
    + r'|"(?P<s>[^"\\]*)"'
    + r"|'(?P<q>[^'\\]*)'"
    + r"|(?P<i>[0-9]+)(?![0-9_#.])"
    + r"|(?P<d>\.)(?=[\x00-\x20\x80-\xa0%]|\Z)"
    + f"|(?P<v>{_VAR_RE.pattern})"
    + r"|(?P<e>\Z))")
_KIND_NAMES = {_INT: "integer", _FLOAT: "float", _CHAR: "character", _ATOM: "atom",
               _STRING: "string", _VAR: "variable", _RESERVED: "reserved word",
               _PUNCT: "symbol", _DOT: "'.'", _EOF: "end of file"}


class _Token:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind: int, value, pos: int) -> None:
        self.kind = kind
        self.value = value
        self.pos = pos

    def is_punct(self, text: str) -> bool:
        return self.kind == _PUNCT and self.value == text

    def describe(self) -> str:
        if self.kind in (_PUNCT,):
            return f"'{self.value}'"
        if self.kind in (_DOT, _EOF):
            return _KIND_NAMES[self.kind]
        if self.kind == _STRING:
            return "string"
        return f"{_KIND_NAMES[self.kind]} {self.value!r}" if self.kind != _ATOM else \
            f"atom '{self.value}'"


class _Scanner:
    """erl_scan over a ``str``; errors carry line, column and byte offset."""

    def __init__(self, text: str, file: str | None, encoding: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self.file = file
        self.encoding = encoding
        self._peeked: _Token | None = None

    # -- errors ---------------------------------------------------------------
    def where(self, pos: int) -> tuple[int, int, int]:
        text = self.text
        pos = min(pos, self.n)
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        if self.encoding == "latin-1":
            offset = pos
        else:
            offset = len(text[:pos].encode("utf-8", "surrogatepass"))
        return line, col, offset

    def error(self, reason: str, pos: int, cls=FormatError) -> BeamError:
        line, col, offset = self.where(pos)
        err = cls(f"line {line}, column {col}: {reason}", file=self.file, offset=offset)
        err.line = line
        err.column = col
        return err

    # -- tokens ---------------------------------------------------------------
    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> _Token:
        tok = self._peeked
        if tok is None:
            return self._scan()
        self._peeked = None
        return tok

    def _scan(self) -> _Token:
        m = _FAST_RE.match(self.text, self.i)
        if m is not None:
            g = m.lastgroup
            if g == "p":
                self.i = m.end()
                return _Token(_PUNCT, m.group(g), m.start(g))
            if g == "a":
                word = m.group(g)
                if len(word) <= MAX_ATOM_LENGTH:
                    self.i = m.end()
                    return _Token(_RESERVED if word in RESERVED_WORDS else _ATOM, word,
                                  m.start(g))
            elif g == "s":
                self.i = m.end()
                return _Token(_STRING, list(map(ord, m.group(g))), m.start(g) - 1)
            elif g == "q":
                name = m.group(g)
                if len(name) <= MAX_ATOM_LENGTH and name.isascii():
                    self.i = m.end()
                    return _Token(_ATOM, name, m.start(g) - 1)
            elif g == "i":
                self.i = m.end()
                return _Token(_INT, self._to_int(m.group(g), 10, m.start(g)), m.start(g))
            elif g == "d":
                self.i = m.end()
                return _Token(_DOT, ".", m.start(g))
            elif g == "v":
                self.i = m.end()
                return _Token(_VAR, m.group(g), m.start(g))
            elif g == "e":
                self.i = m.end()
                return _Token(_EOF, None, self.i)
        return self._scan_full()

    def _scan_full(self) -> _Token:
        text = self.text
        i = _SKIP_RE.match(text, self.i).end()
        if i >= self.n:
            self.i = i
            return _Token(_EOF, None, i)
        c = text[i]
        if "0" <= c <= "9":
            return self._number(i)
        if c == '"':
            value, self.i = self._quoted(i, '"', _PLAIN_STRING_RE, "string")
            return _Token(_STRING, value, i)
        if c == "'":
            chars, self.i = self._quoted(i, "'", _PLAIN_QATOM_RE, "atom")
            if len(chars) > MAX_ATOM_LENGTH:
                raise self.error("atom too long (more than 255 characters)", i)
            try:
                name = "".join(map(chr, chars))
                name.encode("utf-8")
            except (ValueError, UnicodeEncodeError):
                raise self.error("atom contains an invalid character", i) from None
            return _Token(_ATOM, name, i)
        if c == "$":
            return self._char(i)
        m = _ATOM_RE.match(text, i)
        if m:
            word = m.group()
            self.i = m.end()
            if len(word) > MAX_ATOM_LENGTH:
                raise self.error("atom too long (more than 255 characters)", i)
            if word in RESERVED_WORDS:
                return _Token(_RESERVED, word, i)
            return _Token(_ATOM, word, i)
        m = _VAR_RE.match(text, i)
        if m:
            self.i = m.end()
            return _Token(_VAR, m.group(), i)
        if c == "." and (i + 1 >= self.n or text[i + 1] in _WS_CHARS or text[i + 1] == "%"):
            self.i = i + 1
            return _Token(_DOT, ".", i)
        for p in _PUNCTUATION:
            if text.startswith(p, i):
                self.i = i + len(p)
                return _Token(_PUNCT, p, i)
        raise self.error(f"illegal character {c!r}", i)

    def _number(self, start: int) -> _Token:
        text = self.text
        m = _DIGITS_RE.match(text, start)
        i = m.end()
        digits = m.group().replace("_", "")
        if i < self.n and text[i] == "#":
            base = int(digits)
            if not 2 <= base <= 36:
                raise self.error(f"illegal integer base {base}", start)
            j = i + 1
            out: list[str] = []
            while j < self.n:
                ch = text[j]
                if ch == "_" and out and out[-1] != "_" and j + 1 < self.n \
                        and _digit_value(text[j + 1]) < base:
                    out.append("_")
                elif _digit_value(ch) < base:
                    out.append(ch)
                else:
                    break
                j += 1
            if not out:
                raise self.error(f"integer in base {base} has no digits", start)
            self.i = j
            return _Token(_INT, self._to_int("".join(out).replace("_", ""), base, start),
                          start)
        fm = _FRACTION_RE.match(text, i)
        if fm:
            j = fm.end()
            em = _EXPONENT_RE.match(text, j)
            if em:
                j = em.end()
            literal = text[start:j].replace("_", "")
            try:
                value = float(literal)
            except ValueError:  # pragma: no cover - the regexes only admit valid floats
                raise self.error(f"bad float {literal!r}", start) from None
            if value in (float("inf"), float("-inf")):
                raise self.error(f"float out of range {literal!r}", start)
            self.i = j
            return _Token(_FLOAT, value, start)
        self.i = i
        return _Token(_INT, self._to_int(digits, 10, start), start)

    def _to_int(self, digits: str, base: int, pos: int) -> int:
        try:
            return int(digits, base)
        except ValueError:
            # CPython refuses decimal conversions of more than 4300 digits.
            raise self.error("integer literal too long", pos, LimitError) from None

    def _escape(self, i: int, start: int, what: str) -> tuple[int, int]:
        """Decode the escape whose backslash is at ``i - 1``; returns (code point, next i)."""
        text = self.text
        if i >= self.n:
            raise self.error(f"unterminated {what}", start)
        c = text[i]
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c], i + 1
        if "0" <= c <= "7":
            j = i
            while j < self.n and j - i < 3 and "0" <= text[j] <= "7":
                j += 1
            return int(text[i:j], 8), j
        if c == "x":
            if i + 1 < self.n and text[i + 1] == "{":
                end = text.find("}", i + 2)
                hexdigits = text[i + 2:end] if end >= 0 else ""
                if end < 0 or not hexdigits or not all(_digit_value(h) < 16 for h in hexdigits):
                    raise self.error("illegal \\x{...} escape", i - 1)
                value = int(hexdigits, 16)
                if value > 0x10FFFF:
                    raise self.error("character code out of range in \\x{...} escape", i - 1)
                return value, end + 1
            hexdigits = text[i + 1:i + 3]
            if len(hexdigits) != 2 or not all(_digit_value(h) < 16 for h in hexdigits):
                raise self.error("illegal \\x escape (two hex digits expected)", i - 1)
            return int(hexdigits, 16), i + 3
        if c == "^":
            if i + 1 >= self.n:
                raise self.error(f"unterminated {what}", start)
            return ord(text[i + 1]) & 31, i + 2
        return ord(c), i + 1

    def _quoted(self, start: int, quote: str, plain_re, what: str) -> tuple[list[int], int]:
        text = self.text
        out: list[int] = []
        i = start + 1
        while True:
            m = plain_re.match(text, i)
            if m.end() > i:
                out.extend(map(ord, m.group()))
                i = m.end()
            if i >= self.n:
                raise self.error(f"unterminated {what}", start)
            if text[i] == quote:
                return out, i + 1
            value, i = self._escape(i + 1, start, what)
            out.append(value)

    def _char(self, start: int) -> _Token:
        text = self.text
        i = start + 1
        if i >= self.n:
            raise self.error("unterminated character literal", start)
        if text[i] == "\\":
            value, i = self._escape(i + 1, start, "character literal")
        else:
            value, i = ord(text[i]), i + 1
        self.i = i
        return _Token(_CHAR, value, start)


def _digit_value(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - 48
    if "a" <= ch <= "z":
        return ord(ch) - 87
    if "A" <= ch <= "Z":
        return ord(ch) - 55
    return 99


# ---------------------------------------------------------------------------
# Parser


class _Frame:
    __slots__ = ("kind", "items", "pos", "key", "sign")

    def __init__(self, kind: str, pos: int, sign: int = 1) -> None:
        self.kind = kind            # tuple, list, tail, map_key, map_value, paren, sign
        self.items: list = []
        self.pos = pos
        self.key = None
        self.sign = sign


_NUMBER = "number"          # a number literal (unary minus may apply)
_SIGNED = "signed"          # the result of a unary -/+ (a second one is a bad term)
_OTHER = "other"

_CLOSING = {"map_key": "}", "tuple": "}", "list": "]"}
_EMPTY = {"map_key": Map, "tuple": tuple, "list": list}

_BIN_TYPES = {"integer", "float", "binary", "bytes", "bitstring", "bits", "utf8", "utf16",
              "utf32"}


class _Parser:
    def __init__(self, scanner: _Scanner, max_depth: int) -> None:
        self.s = scanner
        self.max_depth = max_depth

    def unexpected(self, tok: _Token, expected: str) -> BeamError:
        s = self.s
        if tok.kind == _VAR:
            return s.error(f"variables are not allowed in a term: {tok.value}", tok.pos)
        if tok.kind == _RESERVED:
            if tok.value == "fun":
                return s.error("fun expressions are not allowed in a term", tok.pos)
            return s.error(f"reserved word '{tok.value}' is not allowed in a term "
                           f"(quote it to use it as an atom)", tok.pos)
        if tok.kind == _EOF:
            return s.error(f"unexpected end of file, {expected} expected", tok.pos)
        return s.error(f"unexpected {tok.describe()}, {expected} expected", tok.pos)

    def after_value(self, tok: _Token, expected: str) -> BeamError:
        """The token after a complete value is wrong: name the construct if we can."""
        s = self.s
        if tok.is_punct("("):
            return s.error("function calls are not allowed in a term", tok.pos)
        if tok.is_punct(":"):
            return s.error("remote function calls are not allowed in a term", tok.pos)
        if tok.is_punct("#"):
            return s.error("record and map update expressions are not allowed in a term",
                           tok.pos)
        if tok.kind == _PUNCT and tok.value in ("+", "-", "*", "/", "++", "--", "==", "/=",
                                                 "=<", "<", ">=", ">", "=:=", "=/=", "!",
                                                 "=", "<=", "<-", "?="):
            return s.error(f"operator '{tok.value}' is not allowed in a term", tok.pos)
        if tok.kind in (_RESERVED,) and tok.value in ("div", "rem", "band", "bor", "bxor",
                                                       "bsl", "bsr", "and", "or", "xor",
                                                       "andalso", "orelse"):
            return s.error(f"operator '{tok.value}' is not allowed in a term", tok.pos)
        return self.unexpected(tok, expected)

    def parse(self, tok: _Token):
        s = self.s
        next_tok = s.next
        stack: list[_Frame] = []
        max_depth = self.max_depth
        while True:
            # -- expecting the start of a value at ``tok`` -------------------------
            kind = tok.kind
            if kind in (_INT, _FLOAT, _CHAR):
                value, vkind = tok.value, _NUMBER
            elif kind == _ATOM:
                value, vkind = Atom(tok.value), _OTHER
            elif kind == _STRING:
                chars = list(tok.value)
                while s.peek().kind == _STRING:
                    chars.extend(s.next().value)
                value, vkind = chars, _OTHER
            elif kind == _PUNCT and tok.value in ("{", "[", "(", "#", "-", "+", "<<"):
                p = tok.value
                if p == "<<":
                    value, vkind = self.binary(tok), _OTHER
                else:
                    if p == "#":
                        nxt = s.next()
                        if not nxt.is_punct("{"):
                            if nxt.kind == _ATOM:
                                raise s.error("records are not allowed in a term", tok.pos)
                            raise self.unexpected(nxt, "'{'")
                        frame = _Frame("map_key", tok.pos)
                    elif p == "{":
                        frame = _Frame("tuple", tok.pos)
                    elif p == "[":
                        frame = _Frame("list", tok.pos)
                    elif p == "(":
                        frame = _Frame("paren", tok.pos)
                    else:
                        frame = _Frame("sign", tok.pos, -1 if p == "-" else 1)
                    if len(stack) >= max_depth:
                        raise s.error(f"terms nested deeper than {max_depth} levels", tok.pos,
                                      LimitError)
                    closing = _CLOSING.get(frame.kind)
                    if closing is not None and s.peek().is_punct(closing):
                        s.next()
                        value, vkind = _EMPTY[frame.kind](), _OTHER
                    else:
                        stack.append(frame)
                        tok = next_tok()
                        continue
            else:
                raise self.unexpected(tok, "a term")

            # -- a complete value: fold it into the enclosing frames -------------------
            while True:
                if not stack:
                    return value
                top = stack[-1]
                k = top.kind
                if k == "sign":
                    if vkind != _NUMBER:
                        raise s.error("unary '-'/'+' applies only to a number literal",
                                      top.pos)
                    value = -value if top.sign < 0 else value
                    vkind = _SIGNED
                    stack.pop()
                    continue
                tok = next_tok()
                p = tok.value if tok.kind == _PUNCT else None
                if k == "tuple":
                    top.items.append(value)
                    if p == ",":
                        break
                    if p == "}":
                        stack.pop()
                        value, vkind = tuple(top.items), _OTHER
                        continue
                    raise self.after_value(tok, "',' or '}'")
                if k == "list":
                    top.items.append(value)
                    if p == ",":
                        break
                    if p == "|":
                        top.kind = "tail"
                        break
                    if p == "]":
                        stack.pop()
                        value, vkind = top.items, _OTHER
                        continue
                    raise self.after_value(tok, "',', '|' or ']'")
                if k == "paren":
                    if p != ")":
                        raise self.after_value(tok, "')'")
                    stack.pop()
                    continue
                if k == "tail":
                    if p != "]":
                        raise self.after_value(tok, "']'")
                    stack.pop()
                    value, vkind = _cons(top.items, value), _OTHER
                    continue
                if k == "map_key":
                    if p == "=>":
                        top.key = value
                        top.kind = "map_value"
                        break
                    if p == ":=":
                        raise s.error("':=' is only allowed in map updates; use '=>'",
                                      tok.pos)
                    raise self.after_value(tok, "'=>'")
                if k == "map_value":
                    top.items.append((top.key, value))
                    if p == ",":
                        top.kind = "map_key"
                        break
                    if p == "}":
                        stack.pop()
                        value, vkind = _make_map(top.items), _OTHER
                        continue
                    raise self.after_value(tok, "',' or '}'")
                raise AssertionError(k)  # pragma: no cover
            tok = next_tok()

    # -- binaries ------------------------------------------------------------
    def binary(self, open_tok: _Token) -> bytes | BitBinary:
        s = self.s
        acc = 0
        nbits = 0
        if s.peek().is_punct(">>"):
            s.next()
            return b""
        while True:
            tok = s.next()
            seg_pos = tok.pos
            sign = 1
            if tok.kind == _PUNCT and tok.value in ("-", "+"):
                sign = -1 if tok.value == "-" else 1
                tok = s.next()
                if tok.kind not in (_INT, _FLOAT, _CHAR):
                    raise self.unexpected(tok, "a number")
            if tok.kind in (_INT, _FLOAT, _CHAR):
                values = [tok.value * sign]
                is_string = False
            elif tok.kind == _STRING:
                values = list(tok.value)
                while s.peek().kind == _STRING:
                    values.extend(s.next().value)
                is_string = True
            elif tok.is_punct("<<"):
                raise s.error("nested binaries in a binary are not supported", tok.pos,
                              UnsupportedError)
            else:
                raise self.unexpected(tok, "an integer, float or string segment")
            size = None
            tok = s.next()
            if tok.is_punct(":"):
                tok = s.next()
                if tok.kind != _INT:
                    raise self.unexpected(tok, "an integer segment size")
                size = tok.value
                tok = s.next()
            types: set[str] = set()
            unit = None
            if tok.is_punct("/"):
                while True:
                    tok = s.next()
                    if tok.kind != _ATOM:
                        raise self.unexpected(tok, "a binary type specifier")
                    if tok.value == "unit":
                        if not s.next().is_punct(":"):
                            raise s.error("'unit' needs ':N'", tok.pos)
                        utok = s.next()
                        if utok.kind != _INT or not 1 <= utok.value <= 256:
                            raise s.error("unit must be an integer from 1 to 256", utok.pos)
                        unit = utok.value
                    elif tok.value in _BIN_TYPES or tok.value in (
                            "signed", "unsigned", "big", "little", "native"):
                        types.add(str(tok.value))
                    else:
                        raise s.error(f"unknown binary type specifier '{tok.value}'", tok.pos)
                    tok = s.next()
                    if not tok.is_punct("-"):
                        break
            if is_string and size is None and unit is None and not types:
                # A plain string segment: one byte per character (its low 8 bits).
                width = 8 * len(values)
                acc = (acc << width) | int.from_bytes(bytes(v & 255 for v in values), "big")
                nbits += width
                if nbits > 8 * MAX_TEXT_SIZE:
                    raise s.error("binary too large", seg_pos, LimitError)
                values = ()
            for v in values:
                bits, width = _segment(v, size, types, unit, is_string, s, seg_pos)
                acc = (acc << width) | bits
                nbits += width
                if nbits > 8 * MAX_TEXT_SIZE:
                    raise s.error("binary too large", seg_pos, LimitError)
            if tok.is_punct(","):
                continue
            if tok.is_punct(">>"):
                break
            raise self.after_value(tok, "',' or '>>'")
        if nbits % 8:
            pad = 8 - nbits % 8
            return BitBinary((acc << pad).to_bytes((nbits + pad) // 8, "big"), 8 - pad)
        return acc.to_bytes(nbits // 8, "big")


def _segment(v, size, types, unit, is_string, s: _Scanner, pos: int) -> tuple[int, int]:
    """One binary segment as (bits, width) per eval_bits' rules for literal values."""
    kinds = types & _BIN_TYPES
    if len(kinds) > 1:
        raise s.error("conflicting binary types", pos)
    kind = next(iter(kinds)) if kinds else ("float" if isinstance(v, float) else "integer")
    little = "little" in types or ("native" in types and sys.byteorder == "little")
    if kind in ("utf8", "utf16", "utf32"):
        if size is not None or unit is not None:
            raise s.error(f"size and unit are not allowed with {kind}", pos)
        if not isinstance(v, int) or not (0 <= v <= 0x10FFFF) or 0xD800 <= v <= 0xDFFF:
            raise s.error(f"{v!r} is not a valid code point for {kind}", pos)
        codec = {"utf8": "utf-8", "utf16": "utf-16-le" if little else "utf-16-be",
                 "utf32": "utf-32-le" if little else "utf-32-be"}[kind]
        data = chr(v).encode(codec)
        return int.from_bytes(data, "big"), 8 * len(data)
    if kind in ("binary", "bytes", "bitstring", "bits"):
        raise s.error(f"a {'string' if is_string else 'number'} cannot be a {kind} segment",
                      pos)
    if kind == "float":
        width = (64 if size is None else size) * (unit or 1)
        if width not in (16, 32, 64):
            raise s.error(f"float segments must be 16, 32 or 64 bits, not {width}", pos)
        try:
            data = struct.pack(("<" if little else ">") + {16: "e", 32: "f", 64: "d"}[width],
                               float(v))
        except (OverflowError, struct.error):
            raise s.error(f"float {v!r} does not fit in {width} bits", pos) from None
        return int.from_bytes(data, "big"), width
    if not isinstance(v, int):
        raise s.error("a float cannot be an integer segment", pos)
    width = (8 if size is None else size) * (unit or 1)
    if width > 8 * MAX_TEXT_SIZE:
        raise s.error("binary segment too large", pos, LimitError)
    bits = v & ((1 << width) - 1)
    if little and width:
        if width % 8:
            raise s.error("little-endian segments that are not whole bytes are not supported",
                          pos, UnsupportedError)
        bits = int.from_bytes(bits.to_bytes(width // 8, "big"), "little")
    return bits, width


def _cons(items: list, tail):
    """``[items | tail]`` with consult's semantics (a proper tail makes a proper list)."""
    if isinstance(tail, list):
        return items + tail
    if isinstance(tail, ImproperList):
        return ImproperList(tuple(items) + tuple(tail.items), tail.tail)
    return ImproperList(tuple(items), tail)


def _make_map(pairs: list) -> Map:
    """Later values win, as in ``maps:from_list/1``; keys are equal only when exactly
    equal (``1`` and ``1.0`` stay two keys): both are :class:`Map`'s own rules."""
    return Map(pairs)


# ---------------------------------------------------------------------------
# Public entry points


def parse_terms(text: str, *, file: str | None = None, max_depth: int = MAX_DEPTH,
                _encoding: str = "utf-8") -> list:
    """Parse a file of dot-terminated terms as ``file:consult/1`` does.

    Raises :class:`FormatError` (with ``file``, ``offset`` = byte offset, and ``line`` /
    ``column`` attributes) for anything that is not a literal term, :class:`LimitError`
    for text over 16 MB or nesting deeper than ``max_depth``.
    """
    if len(text) > MAX_TEXT_SIZE or (len(text) * 4 > MAX_TEXT_SIZE
                                     and len(text.encode("utf-8", "surrogatepass"))
                                     > MAX_TEXT_SIZE):
        raise LimitError(f"term file larger than {MAX_TEXT_SIZE} bytes", file=file)
    scanner = _Scanner(text, file, _encoding)
    parser = _Parser(scanner, max_depth)
    out = []
    while True:
        tok = scanner.next()
        if tok.kind == _EOF:
            return out
        term = parser.parse(tok)
        tok = scanner.next()
        if tok.kind != _DOT:
            raise parser.after_value(tok, "'.'")
        out.append(term)


_CODING_RE = re.compile(rb"^[^\n]*%[^\n]*coding\s*[:=]\s*([-a-zA-Z0-9_]+)", re.M)


def parse_bytes(data: bytes, *, file: str | None = None, max_depth: int = MAX_DEPTH) -> list:
    """Decode like ``file:consult/1`` (UTF-8, or Latin-1 when the first two lines carry a
    ``coding: latin-1`` comment) and parse with :func:`parse_terms`."""
    if len(data) > MAX_TEXT_SIZE:
        raise LimitError(f"term file larger than {MAX_TEXT_SIZE} bytes", file=file)
    head = b"\n".join(data.split(b"\n", 2)[:2])
    m = _CODING_RE.search(head)
    encoding = "utf-8"
    if m and m.group(1).lower() in (b"latin-1", b"latin1", b"iso-8859-1", b"iso_8859-1",
                                     b"iso8859-1"):
        encoding = "latin-1"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FormatError(f"invalid UTF-8 ({exc.reason})", file=file,
                          offset=exc.start) from None
    return parse_terms(text, file=file, max_depth=max_depth, _encoding=encoding)


def parse_file(path, *, max_depth: int = MAX_DEPTH) -> list:
    """Read (at most 16 MB) and parse a term file."""
    import os
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read(MAX_TEXT_SIZE + 1)
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}", file=name) from None
    return parse_bytes(data, file=name, max_depth=max_depth)


def as_text(term) -> str | None:
    """A string term as ``str``: a list of code points (``[]`` is ``""``), a ``str``, or a
    UTF-8 binary.  ``None`` when the term is not text."""
    if isinstance(term, str) and not isinstance(term, Atom):
        return term
    if isinstance(term, list):
        try:
            return "".join(map(chr, term)) if all(
                type(c) is int and not 0xD800 <= c <= 0xDFFF for c in term) else None
        except (ValueError, OverflowError):
            return None
    if isinstance(term, (bytes, bytearray)):
        try:
            return bytes(term).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


# ---------------------------------------------------------------------------
# Writing terms: a ~p-like layout over the flat text of
# :func:`beaminspect.terms.printer.source_text`.

_PRETTY_DEPTH = 50


def _pretty(term, indent: int, width: int, depth: int) -> str:
    flat = source_text(term)
    if (indent + len(flat) <= width or depth >= _PRETTY_DEPTH
            or source_scalar_text(term) is not None):
        return flat
    if isinstance(term, tuple):
        opening, closing, parts = "{", "}", list(term)
    elif isinstance(term, list):
        opening, closing, parts = "[", "]", term
    elif isinstance(term, ImproperList):
        opening, closing, parts = "[", "]", list(term.items)
    else:
        opening, closing, parts = "#{", "}", None
    inner = indent + len(opening)
    sep = ",\n" + " " * inner
    if parts is None:
        texts = []
        for k, v in term.items():
            key = _pretty(k, inner, width, depth + 1)
            texts.append(key + " => " + _pretty(v, inner + len(key.rsplit("\n", 1)[-1]) + 4,
                                                width, depth + 1))
        return opening + sep.join(texts) + closing
    texts = [_pretty(p, inner, width, depth + 1) for p in parts]
    body = sep.join(texts)
    if isinstance(term, ImproperList):
        body += "\n" + " " * inner + "|" + _pretty(term.tail, inner + 1, width, depth + 1)
    return opening + body + closing


def dump_term(term, *, width: int = 80) -> str:
    """One term as consult-readable text (without the final dot), laid out like ``~p``."""
    return _pretty(term, 0, width, 0)


def dump_terms(terms, *, width: int = 80) -> str:
    """Terms as a consult-readable file: each term followed by ``.`` and a newline.

    Lists of printable code points are written as ``"strings"`` (they read back as the
    same lists); ``str`` values are written as strings, ``bytes`` as binaries, ``bool``
    as ``true``/``false``.  Anything else that is not a term raises ``TypeError``.
    """
    return "".join(dump_term(t, width=width) + ".\n" for t in terms)
