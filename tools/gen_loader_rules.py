#!/usr/bin/env python3
"""Generate ``beaminspect/loader/rules_data.py``: what OTP's loader does with each operand kind.

    python tools/gen_loader_rules.py [--out beaminspect/loader/rules_data.py]

After reading a generic instruction, the loader rewrites it with the transformation
rules of its emulator's ``ops.tab`` (erts/emulator/beam/jit/x86/ops.tab for the JIT of
OTP 25 on x86_64) and then checks every operand of the resulting specific instruction
against its type letter (erts/emulator/beam/jit/asm_load.c, ``beam_load_emit_op``):
``d`` wants x or y ("bad tag N for destination"), ``s`` any source ("bad tag N for
general source"), ``t``/``I``/``W``/``e``/``b`` an untagged integer ("bad tag N;
expected 0")...  When no rule applies and the generic instruction has no specific form,
the answer is "no specific operation found".  The rules mix operand types, values and
neighbouring instructions, and run C generator functions, so they are not re-implemented
here.  Instead this script asks the installed runtime system itself:

1. for each generic opcode, up to ``INSTANCES`` instances are taken from different
   modules (the project's samples, then the installed OTP beams);
2. each operand of an instance is replaced, in turn, by one operand of each kind the
   loader distinguishes (``u i a n x y f p q l``: untagged, integer, atom, nil, x and y
   registers, label, no label, literal, float register), keeping the rest of the module;
3. one ``erl`` answers ``erlang:prepare_loading/2`` for every probe and the loader's
   message is read from the logger;
4. a kind is recorded as refused at a position when every instance refused it, with
   the loader's message; when instances disagree (the rules looked at the neighbours)
   the position is recorded as depending on the context and nothing is predicted.

The BIF list (``ImpT`` entries the loader binds to a BIF: ``erlang:is_builtin/3``, which
reads the same export entries ``bif_number`` that ``beam_load_prepare_emit`` reads) is
taken from the same runtime system, over every exported function of every module of the
installed OTP and of ``erlang`` itself.

The generated file records the runtime system (OTP release, ERTS version, emulator
flavour and architecture) it was measured on.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import pprint
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fuzz  # noqa: E402

from beaminspect.format.opcodes import OPCODES  # noqa: E402

INSTANCES = 3
OUT = os.path.join(ROOT, "beaminspect", "loader", "rules_data.py")

#: The kinds of operand the loader tells apart, with the compact encoding used to probe.
KINDS = "uianxyfpqlo"

#: Obsolete opcodes the loader still translates, probed on instances of the opcode
#: whose operands they share (the compiler no longer emits them).
TEMPLATES = {15: 12, 14: 13}  # allocate_zero <- allocate, allocate_heap_zero <- allocate_heap

#: prepare_loading/2's answer per file, one line each (tab-separated: the file, "ok" or
#: "error Reason", and the loader's logged words); tests/test_loader_agreement.py uses it too.
PREPARE_LOADING = r"""
{ok, [Files]} = file:consult(List),
ok = logger:add_handler(loadlog, logger_std_h,
        #{config => #{file => Log}, level => all,
          formatter => {logger_formatter, #{single_line => true, template => [msg, "\n"]}}}),
Size = fun() -> ok = logger_std_h:filesync(loadlog), filelib:file_size(Log) end,
Said = fun S(Before, Waited) ->
           case Size() of
               Before when Waited < 1000 -> receive after 1 -> S(Before, Waited + 1) end;
               Before -> "";
               _ ->
                   {ok, Fd} = file:open(Log, [read, binary]),
                   {ok, Text} = file:pread(Fd, Before, 1 bsl 20),
                   ok = file:close(Fd),
                   string:trim(binary:replace(Text, [<<"\n">>, <<"\t">>], <<" ">>, [global]))
           end
       end,
lists:foreach(
  fun(F) ->
      {ok, Bin} = file:read_file(F),
      Mod = list_to_atom(filename:basename(F, ".beam")),
      Before = Size(),
      {A, Text} = case catch erlang:prepare_loading(Mod, Bin) of
              {error, Reason} -> {io_lib:format("error ~0p", [Reason]), Said(Before, 0)};
              {'EXIT', Why} -> {io_lib:format("error exit ~0p", [element(1, Why)]), ""};
              _Prepared -> {"ok", ""}
          end,
      ok = file:write_file(Out, [F, "\t", A, "\t", Text, "\n"], [append])
  end, Files),
halt().
"""

_ERL_INFO = r"""
Mods = [list_to_atom(filename:basename(F, ".beam"))
        || F <- filelib:wildcard(filename:join([code:root_dir(), "lib", "*", "ebin", "*.beam"]))],
Bifs = lists:usort([{M, F, A} || M <- [erlang | Mods],
                                 {F, A} <- try M:module_info(exports) catch _:_ -> [] end,
                                 erlang:is_builtin(M, F, A)]),
Info = {erlang:system_info(otp_release), erlang:system_info(version),
        erlang:system_info(emu_flavor), erlang:system_info(system_architecture)},
ok = file:write_file(Out, io_lib:format("~p.~n~p.~n", [Info, Bifs])),
halt().
"""


def _erl(program: str, **bindings: str) -> subprocess.CompletedProcess:
    binds = ", ".join(f'{k} = "{v}"' for k, v in bindings.items())
    return subprocess.run(["erl", "-noshell", "-noinput", "-eval", binds + ", " + program],
                          capture_output=True, text=True, timeout=3600)


def _sources() -> list[str]:
    samples = sorted(glob.glob(os.path.join(ROOT, "samples", "**", "*.beam"), recursive=True))
    otp = sorted(glob.glob(fuzz.OTP_GLOB), key=os.path.getsize)
    elixir = sorted(glob.glob("/usr/lib/elixir/lib/*/ebin/*.beam"), key=os.path.getsize)
    return samples + otp + elixir


def _literal_count(chunks) -> int:
    import zlib
    for cid, data in chunks:
        if cid == b"LitT" and len(data) > 8:
            try:
                table = zlib.decompress(data[4:])
            except zlib.error:
                return 0
            return struct.unpack_from(">I", table, 0)[0]
    return 0


def _encode(kind: str, orig, label: int) -> bytes:
    """The compact encoding of an operand of ``kind``; register and integer values are
    kept from the original operand where it has a small one (a tag change keeps them)."""
    value = orig.value if isinstance(orig.value, int) and 0 <= orig.value < 16 else 1
    if orig.tag == "tr":
        value = orig.value[0].value if orig.value[0].value < 16 else 1
    elif orig.tag == "alloc":
        value = sum(n for _kind, n in orig.value) if len(orig.value) == 1 else 1
    if kind == "u":
        return fuzz.cenc(0, value)
    if kind == "i":
        return fuzz.cenc(1, value)
    if kind == "a":
        return fuzz.cenc(2, 1)
    if kind == "n":
        return fuzz.cenc(2, 0)
    if kind == "x":
        return fuzz.cenc(3, value)
    if kind == "y":
        return fuzz.cenc(4, value)
    if kind == "f":
        return fuzz.cenc(5, label)
    if kind == "p":
        return fuzz.cenc(5, 0)
    if kind == "q":
        return fuzz.cenc(7, 4) + fuzz.cenc(0, 0)
    if kind == "l":
        return fuzz.cenc(7, 2) + fuzz.cenc(0, 0)
    if kind == "o":
        return fuzz.cenc(0, 1 << 70)
    raise ValueError(kind)


def kind_of(op) -> str | None:
    """The loader's kind of a decoded operand (None for lists)."""
    tag, v = op.tag, op.value
    if tag == "a":
        return "n" if v == 0 else "a"
    if tag == "f":
        return "p" if v == 0 else "f"
    if tag == "tr":
        return v[0].tag
    return {"u": "u", "i": "i", "x": "x", "y": "y", "literal": "q", "fr": "l",
            "alloc": "u"}.get(tag)


def collect_instances():
    """``{opcode: [(path, chunks, code index, instruction start, spans, label)]}``."""
    found: dict[int, list] = collections.defaultdict(list)
    for path in _sources():
        with open(path, "rb") as f:
            data = f.read()
        chunks = fuzz.split_chunks(data)
        if not chunks:
            continue
        if _literal_count(chunks) == 0:
            continue
        ci = [i for i, c in enumerate(chunks) if c[0] == b"Code"]
        if not ci:
            continue
        code = chunks[ci[0]][1]
        try:
            instrs = fuzz._instructions(code)
        except Exception:  # noqa: BLE001 - a file the reader does not take: skip
            continue
        labels = [spans[0][2].value for _s, opc, spans in instrs if opc == 1]
        label = labels[2] if len(labels) > 2 else labels[0]
        seen_here = set()
        for start, opc, spans in instrs:
            if not spans or opc in seen_here or len(found[opc]) >= INSTANCES:
                continue
            seen_here.add(opc)
            found[opc].append((path, chunks, ci[0], start, spans, label))
        if all(len(found[o]) >= INSTANCES for o in range(1, 181)
               if OPCODES[o] and not OPCODES[o].obsolete and OPCODES[o].arity):
            break
    return found


def _atom_names(chunks) -> list[str]:
    for cid, data in chunks:
        if cid == b"AtU8":
            count = struct.unpack_from(">i", data, 0)[0]
            pos, out = 4, []
            for _ in range(count):
                n = data[pos]
                out.append(data[pos + 1:pos + 1 + n].decode("utf-8"))
                pos += 1 + n
            return out
    return []


def collect_atoms() -> dict[tuple[int, int], set[str]]:
    """The atoms real code has at each atom operand position: ``{(opcode, pos): names}``.
    Some rules of ops.tab take only named atoms (``bs_start_match4 a==am_no_fail``), so
    the module-name atom the probes use can be refused where these are taken."""
    seen: dict[tuple[int, int], set[str]] = collections.defaultdict(set)
    for path in _sources():
        with open(path, "rb") as f:
            chunks = fuzz.split_chunks(f.read())
        code = [c[1] for c in chunks or () if c[0] == b"Code"]
        if not code:
            continue
        try:
            atoms = _atom_names(chunks)
            instrs = fuzz._instructions(code[0])
        except Exception:  # noqa: BLE001 - a file the reader does not take: skip
            continue
        for _start, opc, spans in instrs:
            for pos, (_a, _b, op) in enumerate(spans):
                if op.tag == "a" and 0 < op.value <= len(atoms):
                    seen[(opc, pos)].add(atoms[op.value - 1])
    return seen


def build_probes(found, workdir: str):
    probes = []  # (path, opcode, position, kind)
    n = 0
    for obsolete, template in TEMPLATES.items():
        for path, chunks, ci, start, spans, label in found.get(template, ()):
            code = chunks[ci][1]
            chunks = list(chunks)
            chunks[ci] = (b"Code", code[:start] + bytes([obsolete]) + code[start + 1:])
            found.setdefault(obsolete, []).append((path, chunks, ci, start, spans, label))
    for opc, instances in sorted(found.items()):
        for path, chunks, ci, _start, spans, label in instances:
            code = chunks[ci][1]
            for pos, (a, b, orig) in enumerate(spans):
                if orig.tag == "list":
                    continue
                for kind in KINDS:
                    new = code[:a] + _encode(kind, orig, label) + code[b:]
                    out = list(chunks)
                    out[ci] = (b"Code", new)
                    d = os.path.join(workdir, f"{n:06d}")
                    os.mkdir(d)
                    p = os.path.join(d, os.path.basename(path))
                    with open(p, "wb") as f:
                        f.write(fuzz.join_chunks(out))
                    probes.append((p, opc, pos, kind, kind_of(orig)))
                    n += 1
    return probes


def ask(probes, workdir: str) -> dict[str, tuple[str, str]]:
    answers: dict[str, tuple[str, str]] = {}
    left = [p[0] for p in probes]
    rnd = 0
    while left:
        rnd += 1
        listing = os.path.join(workdir, f"files{rnd}.eterm")
        out = os.path.join(workdir, f"out{rnd}.txt")
        log = os.path.join(workdir, f"log{rnd}.txt")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join('"' + p + '"' for p in left) + "].\n")
        _erl(PREPARE_LOADING, List=listing, Out=out, Log=log)
        done = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8", errors="replace") as f:
                for line in f:
                    path, answer, said = line.rstrip("\n").split("\t", 2)
                    done[path] = (answer, said)
        answers.update(done)
        rest = [p for p in left if p not in done]
        if rest:
            answers[rest[0]] = ("crash", "")
            rest = rest[1:]
        left = rest
    return answers


_WHERE = re.compile(r"^.*?Error loading (?:function|module) [^ ]*")


def loader_words(said: str) -> str:
    """The loader's message without its source line and the module/function name."""
    text = _WHERE.sub("", said).lstrip(" :,")
    return text.replace(":,", ":")


def runtime_info(workdir: str):
    out = os.path.join(workdir, "info.txt")
    _erl(_ERL_INFO, Out=out)
    with open(out, encoding="utf-8") as f:
        text = f.read()
    info_line, bifs_text = text.split("\n", 1)
    parts = re.match(r'\{"([^"]*)","([^"]*)",(\w+),"([^"]*)"\}\.', info_line.strip())
    otp, version, flavor, arch = parts.groups()
    bifs = re.findall(r"\{('(?:[^'\\]|\\.)*'|[a-z][\w@]*),\s*('(?:[^'\\]|\\.)*'|[a-z][\w@]*),"
                      r"\s*(\d+)\}", bifs_text)

    def atom(s: str) -> str:
        if s.startswith("'"):
            return s[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        return s
    return (otp, version, flavor, arch), sorted({(atom(m), atom(f), int(a)) for m, f, a in bifs})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        info, bifs = runtime_info(workdir)
        found = collect_instances()
        atoms_seen = collect_atoms()
        probes = build_probes(found, workdir)
        print(f"{len(probes)} probes over {len(found)} opcodes", file=sys.stderr)
        answers = ask(probes, workdir)

    # (opcode, position, kind) -> [answers]
    results: dict[tuple[int, int, str], list] = collections.defaultdict(list)
    for path, opc, pos, kind, _orig in probes:
        answer, said = answers[path]
        results[(opc, pos, kind)].append(None if answer == "ok" else loader_words(said))
    refused: dict[int, dict[int, dict[str, str]]] = {}
    context: dict[int, dict[int, str]] = {}
    for (opc, pos, kind), outcomes in sorted(results.items()):
        if all(o is not None for o in outcomes):
            words = collections.Counter(outcomes).most_common(1)[0][0]
            refused.setdefault(opc, {}).setdefault(pos, {})[kind] = words
        elif any(o is not None for o in outcomes):
            context.setdefault(opc, {}).setdefault(pos, "")
            context[opc][pos] += kind
    atoms_taken: dict[int, dict[int, list[str]]] = {}
    for opc, positions in refused.items():
        for pos, kinds in positions.items():
            if "a" in kinds and atoms_seen.get((opc, pos)):
                atoms_taken.setdefault(opc, {})[pos] = sorted(atoms_seen[(opc, pos)])
    otp, version, flavor, arch = info
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(f"# Generated by tools/gen_loader_rules.py from Erlang/OTP {otp} (ERTS {version}, "
                f"{flavor}, {arch}) — do not edit\n")
        f.write('"""What the loader of one OTP release does with each kind of operand.\n\n'
                "Measured with ``erlang:prepare_loading/2`` (see tools/gen_loader_rules.py).\n"
                "Operand kinds: ``u`` untagged, ``i`` small integer, ``a`` atom, ``n`` nil "
                "(atom 0),\n``x``/``y`` registers (typed or not), ``f`` label, ``p`` no label "
                "(label 0), ``q`` literal\n(or an integer too large for a small), ``l`` float "
                "register.\n\n"
                "``REFUSED[otp][opcode][position][kind]``: the loader's message when it refuses "
                "that kind\nof operand at that position of the generic instruction.\n"
                "``CONTEXT[otp][opcode][position]``: kinds whose fate depended on the "
                "neighbouring\ninstructions in the measurements (nothing is predicted for them).\n"
                "``ATOMS[otp][opcode][position]``: atoms real code has where the probe's atom "
                "was\nrefused (rules that name an atom, such as ``bs_start_match4 "
                "a==am_no_fail``).\n"
                "``BIFS[otp]``: the (module, function, arity) the loader binds to a BIF.\n"
                '"""\n\n')
        f.write("from __future__ import annotations\n\n")
        f.write(f"MEASURED_ON = {{{int(otp)}: {(otp, version, flavor, arch)!r}}}\n\n")
        f.write(f"KINDS = {KINDS!r}\n\n")
        f.write(f"REFUSED = {{{int(otp)}: ")
        f.write(pprint.pformat(refused, width=100, compact=True))
        f.write("}\n\n")
        f.write(f"CONTEXT = {{{int(otp)}: ")
        f.write(pprint.pformat(context, width=100, compact=True))
        f.write("}\n\n")
        f.write(f"ATOMS = {{{int(otp)}: ")
        f.write(pprint.pformat(atoms_taken, width=100, compact=True))
        f.write("}\n\n")
        f.write(f"BIFS = {{{int(otp)}: frozenset(")
        f.write(pprint.pformat(bifs, width=100, compact=True))
        f.write(")}\n")
    print(f"wrote {args.out}: {sum(len(p) for p in refused.values())} refusing positions, "
          f"{sum(len(p) for p in context.values())} context-dependent, {len(bifs)} BIFs",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
