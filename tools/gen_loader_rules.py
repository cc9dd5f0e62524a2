#!/usr/bin/env python3
"""Generate ``beaminspect/loader/rules/otpN.json``: what OTP N's loader does with each operand kind.

    python tools/gen_loader_rules.py [--otp N] [--out FILE]   # measure and write
    python tools/gen_loader_rules.py [--otp N] --check        # measure, compare, exit 1 if stale
    python tools/gen_loader_rules.py --check-format [FILE...] # the files as this script writes them

``--otp N`` runs the VM of release N through tests/otp.py (the host's erl for the host's
release, ``chroot ROOT erl`` for the cached roots of tools/otp-roots.sh); the default is
the host's release.

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
flavour and architecture) it was measured on; its layout is described in
:mod:`beaminspect.loader.rules`.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fuzz  # noqa: E402

from beaminspect.format.opcodes import MAX_OPCODE_BY_RELEASE, OPCODES  # noqa: E402
from beaminspect.loader.rules import FORMAT  # noqa: E402

INSTANCES = 3
RULES_DIR = os.path.join(ROOT, "beaminspect", "loader", "rules")
#: The release measured when --otp is not given (the host's erl).
HOST_RELEASE = 25


def out_path(otp: int) -> str:
    return os.path.join(RULES_DIR, f"otp{otp}.json")


def release(otp: int):
    """tests/otp.py's Release for ``otp`` (the VM the probes are run on)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from otp import otp as find_release
    rel = find_release(otp)
    if not rel.available:
        raise SystemExit(f"gen_loader_rules: OTP {otp}: {rel.skip_reason}")
    return rel

#: The kinds of operand the loader tells apart, with the compact encoding used to probe.
KINDS = "uianxyfpqlo"

#: Obsolete opcodes the loader still translates, probed on instances of the opcode
#: whose operands they share (the compiler no longer emits them).
TEMPLATES = {14: 12, 15: 13}  # allocate_zero <- allocate, allocate_heap_zero <- allocate_heap

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


def _erl(rel, program: str, **bindings: str):
    """Run ``program`` in release ``rel``'s VM; ``bindings`` are host paths."""
    binds = ", ".join(f'{k} = "{rel.vm_path(v)}"' for k, v in bindings.items())
    return rel.run(["erl", "-noshell", "-noinput", "-eval", binds + ", " + program],
                   timeout=3600)


def _sources(rel) -> list[str]:
    """The modules instances are taken from: the samples the release's compiler built
    (samples/otpN/, for a cached root), the samples of the host's compiler (the other
    sample folders: older instructions that later compilers no longer emit; an instance
    the release refuses as it is, such as the bs_put_* family from OTP 28 on, is left
    out of the measurement), then the release's own OTP and Elixir beams, smallest
    first."""
    host_samples = sorted(
        p for p in glob.glob(os.path.join(ROOT, "samples", "**", "*.beam"), recursive=True)
        if not re.match(r"otp\d+$", os.path.relpath(p, os.path.join(ROOT, "samples"))
                        .split(os.sep)[0]))
    own = [] if rel.on_host else sorted(glob.glob(
        os.path.join(ROOT, "samples", f"otp{rel.otp_release}", "**", "*.beam"), recursive=True))
    otp = sorted(rel.otp_beams(), key=os.path.getsize)
    elixir = sorted(rel.elixir_beams(), key=os.path.getsize)
    return own + host_samples + otp + elixir


def _literal_count(chunks) -> int:
    import zlib
    for cid, data in chunks:
        if cid == b"LitT" and len(data) > 8:
            if struct.unpack_from(">I", data, 0)[0] == 0:
                table = data[4:]          # OTP 28+: the table stored uncompressed
            else:
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


def collect_instances(rel, sources):
    """``{opcode: [(path, chunks, code index, instruction start, spans, label)]}``."""
    highest = MAX_OPCODE_BY_RELEASE[int(rel.otp_release)]
    found: dict[int, list] = collections.defaultdict(list)
    for path in sources:
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
        if all(len(found[o]) >= INSTANCES for o in range(1, highest + 1)
               if OPCODES[o] and not OPCODES[o].obsolete and OPCODES[o].arity):
            break
    return found


def _atom_names(chunks) -> list[str]:
    """The AtU8 atoms (either form: OTP 28+ writes a negative count and compact-encoded
    lengths), read by the library's decoder."""
    from beaminspect.format.chunks import decode_atoms
    for cid, data in chunks:
        if cid == b"AtU8":
            return list(decode_atoms(memoryview(data), "AtU8", None))
    return []


def collect_atoms(sources) -> dict[tuple[int, int], set[str]]:
    """The atoms real code has at each atom operand position: ``{(opcode, pos): names}``.
    Some rules of ops.tab take only named atoms (``bs_start_match4 a==am_no_fail``), so
    the module-name atom the probes use can be refused where these are taken."""
    seen: dict[tuple[int, int], set[str]] = collections.defaultdict(set)
    for path in sources:
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
    """Probe files: for each instance taken from real code, the module as it is
    (position -1, the control: a module the release refuses as it is says nothing about
    operand kinds), and for every instance one per operand position and kind.  An
    obsolete opcode written over a template instance has no control: refused as it is,
    it is refused for every kind, which is what the loader does with it.
    ``(path, opcode, position, kind, original kind, instance)``."""
    probes = []
    n = 0
    inst = 0
    for obsolete, template in TEMPLATES.items():
        for path, chunks, ci, start, spans, label in found.get(template, ()):
            code = chunks[ci][1]
            chunks = list(chunks)
            chunks[ci] = (b"Code", code[:start] + bytes([obsolete]) + code[start + 1:])
            found.setdefault(obsolete, []).append((path, chunks, ci, start, spans, label))
    for opc, instances in sorted(found.items()):
        for path, chunks, ci, _start, spans, label in instances:
            inst += 1
            code = chunks[ci][1]
            if opc not in TEMPLATES:
                d = os.path.join(workdir, f"{n:06d}")
                os.mkdir(d)
                p = os.path.join(d, os.path.basename(path))
                with open(p, "wb") as f:
                    f.write(fuzz.join_chunks(list(chunks)))
                probes.append((p, opc, -1, "", None, inst))
                n += 1
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
                    probes.append((p, opc, pos, kind, kind_of(orig), inst))
                    n += 1
    return probes


def ask(rel, probes, workdir: str) -> dict[str, tuple[str, str]]:
    answers: dict[str, tuple[str, str]] = {}
    left = [p[0] for p in probes]
    rnd = 0
    while left:
        rnd += 1
        listing = os.path.join(workdir, f"files{rnd}.eterm")
        out = os.path.join(workdir, f"out{rnd}.txt")
        log = os.path.join(workdir, f"log{rnd}.txt")
        host_of = {rel.vm_path(p): p for p in left}
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join('"' + rel.vm_path(p) + '"' for p in left) + "].\n")
        _erl(rel, PREPARE_LOADING, List=listing, Out=out, Log=log)
        done = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8", errors="replace") as f:
                for line in f:
                    path, answer, said = line.rstrip("\n").split("\t", 2)
                    done[host_of.get(path, path)] = (answer, said)
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


def runtime_info(rel, workdir: str):
    out = os.path.join(workdir, "info.txt")
    _erl(rel, _ERL_INFO, Out=out)
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


def measure(otp: int) -> dict:
    """Probe release ``otp``'s VM and return the data file's document."""
    rel = release(otp)
    base = None if rel.on_host else os.path.join(rel.root, "tmp")
    with tempfile.TemporaryDirectory(prefix="gen-loader-rules-", dir=base) as workdir:
        info, bifs = runtime_info(rel, workdir)
        sources = _sources(rel)
        found = collect_instances(rel, sources)
        atoms_seen = collect_atoms(sources)
        probes = build_probes(found, workdir)
        print(f"OTP {otp}: {len(probes)} probes over {len(found)} opcodes", file=sys.stderr)
        answers = ask(rel, probes, workdir)

    # An instance that the loader refuses as it is (an instruction this release no
    # longer takes in that form) says nothing about operand kinds: left out.
    refused_as_is = {inst for path, _o, pos, _k, _ok, inst in probes
                     if pos == -1 and answers[path][0] != "ok"}
    # (opcode, position, kind) -> [answers]
    results: dict[tuple[int, int, str], list] = collections.defaultdict(list)
    for path, opc, pos, kind, _orig, inst in probes:
        if pos == -1 or inst in refused_as_is:
            continue
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
    otp_release, version, flavor, arch = info
    if int(otp_release) != otp:
        raise SystemExit(f"gen_loader_rules: asked for OTP {otp}, the VM is OTP {otp_release}")
    return document(otp, {"otp_release": otp_release, "erts_version": version,
                          "emu_flavor": flavor, "architecture": arch},
                    refused, context, atoms_taken, bifs)


def document(otp: int, measured_on: dict, refused, context, atoms, bifs) -> dict:
    """The data file's document, keys in numeric order (JSON keys are strings)."""
    def num(d, leaf):
        return {str(k): {str(p): leaf(v) for p, v in sorted(positions.items(), key=lambda kv: int(kv[0]))}
                for k, positions in sorted(d.items(), key=lambda kv: int(kv[0]))}
    return {
        "format": FORMAT,
        "generator": "tools/gen_loader_rules.py",
        "otp": int(otp),
        "measured_on": {k: measured_on[k] for k in ("otp_release", "erts_version",
                                                     "emu_flavor", "architecture")},
        "instances": INSTANCES,
        "kinds": KINDS,
        "refused": num(refused, lambda kinds: dict(sorted(kinds.items()))),
        "context": num(context, str),
        "atoms": num(atoms, lambda names: sorted(names)),
        "bifs": [[m, f, int(a)] for m, f, a in sorted((m, f, int(a)) for m, f, a in bifs)],
    }


def render(doc: dict) -> str:
    """The text of a data file (the staleness check compares it byte for byte)."""
    doc = document(doc["otp"], doc["measured_on"], doc["refused"], doc["context"],
                   doc["atoms"], doc["bifs"]) if doc.get("format") == FORMAT else doc
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def check_format(paths) -> list[str]:
    """The files that differ from what this script writes for their own contents."""
    stale = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            text = f.read()
        doc = json.loads(text)
        name = os.path.basename(p)
        if render(doc) != text or name != f"otp{doc.get('otp')}.json" \
                or str(doc["measured_on"]["otp_release"]) != str(doc["otp"]):
            stale.append(p)
    return stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--otp", type=int, default=HOST_RELEASE,
                    help="the release to measure (its VM through tests/otp.py)")
    ap.add_argument("--out", help="default: beaminspect/loader/rules/otpN.json")
    ap.add_argument("--check", action="store_true",
                    help="measure, and exit 1 if the committed file differs")
    ap.add_argument("--check-format", nargs="*", metavar="FILE",
                    help="exit 1 if a data file is not as this script writes it "
                         "(default: every committed one)")
    args = ap.parse_args(argv)
    if args.check_format is not None:
        paths = args.check_format or sorted(glob.glob(os.path.join(RULES_DIR, "otp*.json")))
        stale = check_format(paths)
        for p in stale:
            print(f"stale: {p}", file=sys.stderr)
        return 1 if stale else 0
    out = args.out or out_path(args.otp)
    doc = measure(args.otp)
    text = render(doc)
    if args.check:
        try:
            with open(out, encoding="utf-8") as f:
                same = f.read() == text
        except OSError:
            same = False
        print(f"{out}: {'up to date' if same else 'stale'}", file=sys.stderr)
        return 0 if same else 1
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out}: {sum(len(p) for p in doc['refused'].values())} refusing positions, "
          f"{sum(len(p) for p in doc['context'].values())} context-dependent, "
          f"{len(doc['bifs'])} BIFs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
