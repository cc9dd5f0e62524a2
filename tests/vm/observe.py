"""Run the hot-load harness on a pair of .beam files and read what the VM did.

    from vm.observe import observe          # tests/ is on sys.path under pytest
    records = observe("samples/pairs/fun_badfun/v1/hl_fun_badfun.beam",
                      "samples/pairs/fun_badfun/v2/hl_fun_badfun.beam")

`observe()` returns the harness's JSON objects, one per output line, in order
(see the header of hotload.escript for every field). `summarize()` turns them
into `Outcome` tuples, the same structure `parse_expected()` reads from a
pair's EXPECTED file, so the two compare directly.

EXPECTED format, one outcome per line (lines starting with `#` are comments):

    load ok | load error reason=on_load_failure
    md5 same | md5 changed
    vsn same | vsn changed
    purge killed | purge none | purge not_needed
    proc <label> killed | survived | died  [runs=<reply>] [final=<tag>] [change_code=<status>]
    fun <label> ok | badfun | <class>:<tag>  [value=<term>]
    call <label> ok | undef | <class>:<tag>  [value=<term>]
    children <label> ok  [running=<id>,...] [stopped=<id>,...]

A key=value detail in EXPECTED must match the observation; details left out
are not compared.

Run directly to print the summary of a pair:

    python tests/vm/observe.py V1.beam V2.beam [--json]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hotload.escript"
REPO = HERE.parent.parent
PAIRS = REPO / "samples" / "pairs"

#: Harness timeout in seconds; the escript's own watchdog fires at 20 s.
TIMEOUT = 30


class HarnessError(RuntimeError):
    """The harness could not produce observations for a pair."""


class Outcome(NamedTuple):
    kind: str  # load, md5, vsn, purge, proc, fun, call, children
    label: str | None  # "name/arity" for proc, fun and call; None otherwise
    status: str
    details: dict[str, str]

    def line(self) -> str:
        parts = [self.kind] + ([self.label] if self.label is not None else [])
        parts.append(self.status)
        parts += [f"{k}={v}" for k, v in self.details.items()]
        return " ".join(parts)


def escript_available() -> bool:
    return shutil.which("escript") is not None


def observe(v1_path: str | os.PathLike, v2_path: str | os.PathLike,
            release=None) -> list[dict]:
    """Load v1, run its scenario, load v2, purge, and return what happened.

    ``release`` (a ``tests/otp.py`` Release) runs the harness in that OTP release;
    by default it runs on the host's ``escript``."""
    if release is not None and not release.on_host:
        cmd = ["escript", str(HARNESS), os.fspath(v1_path), os.fspath(v2_path)]
        try:
            done = release.run_escript(str(HARNESS), os.fspath(v1_path),
                                       os.fspath(v2_path), timeout=TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"harness timed out after {TIMEOUT} s: {cmd}") from exc
        returncode, stdout, stderr = done.returncode, done.stdout.encode(), done.stderr
    else:
        escript = shutil.which("escript")
        if escript is None:
            raise HarnessError("escript not found: Erlang/OTP is not installed")
        cmd = [escript, str(HARNESS), os.fspath(v1_path), os.fspath(v2_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, cwd=REPO)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"harness timed out after {TIMEOUT} s: {cmd}") from exc
        returncode, stdout = proc.returncode, proc.stdout
        stderr = proc.stderr.decode("utf-8", "replace")
    if returncode != 0:
        raise HarnessError(f"harness exited with {returncode}: {cmd}\n{stderr}")
    records = []
    for n, raw in enumerate(stdout.decode("ascii").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise HarnessError(f"line {n} is not JSON: {raw!r}") from exc
    return records


def observe_pair(name: str) -> list[dict]:
    """observe() on samples/pairs/<name>/v1 and v2."""
    return observe(*pair_beams(name))


def pair_names() -> list[str]:
    return sorted(p.name for p in PAIRS.iterdir() if (p / "v1").is_dir())


def elixir_pair_names() -> list[str]:
    """The pairs written in Elixir (their sources are .ex files)."""
    return [n for n in pair_names() if list((PAIRS / n / "v1").glob("*.ex"))]


def compile_elixir_pairs(release, dest: str | os.PathLike) -> dict[str, tuple[Path, Path]]:
    """Compile every Elixir pair's v1 and v2 sources with ``release``'s own ``elixirc``
    (a ``tests/otp.py`` Release) into ``dest``/<pair>/v1 and v2 on the host; returns
    pair -> (v1 beam, v2 beam).  One VM compiles them all."""
    names = elixir_pair_names()
    with release.scratch() as s:
        jobs = []
        for name in names:
            for side in ("v1", "v2"):
                src = next((PAIRS / name / side).glob("*.ex"))
                out = os.path.join(s.dir, "out", name, side)
                os.makedirs(out)
                jobs.append((s.stage(str(src)), release.vm_path(out)))
        listing = ", ".join(f'{{"{src}", "{out}"}}' for src, out in jobs)
        script = (f"for {{src, out}} <- [{listing}] do\n"
                  "  Code.put_compiler_option(:ignore_module_conflict, true)\n"
                  "  {:ok, _, _} = Kernel.ParallelCompiler.compile_to_path([src], out)\n"
                  "end\n")
        done = release.run(["env", "ERL_COMPILER_OPTIONS=deterministic",
                            "elixir", "-e", script], timeout=300)
        if done.returncode != 0:
            raise HarnessError(f"elixirc of OTP {release.otp_release} failed: "
                               f"{done.stderr[-2000:]}")
        result = {}
        for name in names:
            sides = []
            for side in ("v1", "v2"):
                target = Path(dest) / name / side
                target.mkdir(parents=True)
                beams = sorted(Path(s.dir, "out", name, side).glob("*.beam"))
                if len(beams) != 1:
                    raise HarnessError(f"{name}/{side}: elixirc made {len(beams)} beams")
                shutil.copyfile(beams[0], target / beams[0].name)
                sides.append(target / beams[0].name)
            result[name] = (sides[0], sides[1])
        return result


def pair_beams(name: str) -> tuple[Path, Path]:
    v1 = sorted((PAIRS / name / "v1").glob("*.beam"))
    v2 = sorted((PAIRS / name / "v2").glob("*.beam"))
    if len(v1) != 1 or len(v2) != 1:
        raise HarnessError(f"pair {name}: expected one .beam in v1/ and v2/")
    return v1[0], v2[0]


def summarize(records: list[dict]) -> list[Outcome]:
    """Reduce harness records to the outcomes an EXPECTED file lists."""
    out = []
    for r in records:
        kind = r["kind"]
        if kind == "load":
            if r["version"] == "v1":
                continue
            details = {"reason": r["reason"]} if r["result"] != "ok" else {}
            out.append(Outcome("load", None, r["result"], details))
        elif kind == "md5":
            out.append(Outcome("md5", None, "same" if r["same"] else "changed", {}))
        elif kind == "vsn":
            same = r["old"] == r["current"]
            out.append(Outcome("vsn", None, "same" if same else "changed", {}))
        elif kind == "purge":
            out.append(Outcome("purge", None, r["result"], {}))
        elif kind == "proc":
            if r["alive_after_purge"]:
                status = "survived"
            elif r["killed"]:
                status = "killed"
            else:
                status = "died"
            details = {}
            if r["reply_after_purge"] is not None:
                details["runs"] = r["reply_after_purge"]
            details["final"] = r["final"]
            if "change_code" in r:
                details["change_code"] = r["change_code"]["status"]
            out.append(Outcome("proc", r["label"], status, details))
        elif kind in ("fun", "call"):
            result = r["result"]
            details = {}
            value = result.get("value")
            if result["status"] == "ok" and value is not None and " " not in value:
                details["value"] = value
            out.append(Outcome(kind, r["label"], result["status"], details))
        elif kind == "children":
            details = {}
            for key, running in (("running", True), ("stopped", False)):
                ids = [c["id"] for c in r["children"] if c["running"] is running]
                if ids:
                    details[key] = ",".join(ids)
            out.append(Outcome(kind, r["label"], r["status"], details))
        else:
            raise HarnessError(f"unknown record kind {kind!r}")
    return out


_LABELLED = {"proc", "fun", "call", "children"}


def parse_expected(path: str | os.PathLike) -> list[Outcome]:
    """Read an EXPECTED file into Outcome tuples."""
    out = []
    text = Path(path).read_text(encoding="utf-8")
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        kind = words[0]
        if kind in _LABELLED:
            if len(words) < 3:
                raise ValueError(f"{path}:{n}: want '{kind} LABEL STATUS [k=v ...]'")
            label, status, rest = words[1], words[2], words[3:]
        else:
            if len(words) < 2:
                raise ValueError(f"{path}:{n}: want '{kind} STATUS [k=v ...]'")
            label, status, rest = None, words[1], words[2:]
        details = {}
        for word in rest:
            key, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"{path}:{n}: {word!r} is not key=value")
            details[key] = value
        out.append(Outcome(kind, label, status, details))
    return out


def mismatches(expected: list[Outcome], observed: list[Outcome]) -> list[str]:
    """Differences between EXPECTED and observed outcomes, as readable lines."""
    problems = []
    if len(expected) != len(observed):
        problems.append(f"{len(expected)} expected outcomes, {len(observed)} observed")
    for i, (exp, obs) in enumerate(zip(expected, observed), 1):
        same = (exp.kind, exp.label, exp.status) == (obs.kind, obs.label, obs.status)
        same = same and all(obs.details.get(k) == v for k, v in exp.details.items())
        if not same:
            problems.append(f"#{i}: expected '{exp.line()}', observed '{obs.line()}'")
    for obs in observed[len(expected):]:
        problems.append(f"unexpected: '{obs.line()}'")
    for exp in expected[len(observed):]:
        problems.append(f"missing: '{exp.line()}'")
    return problems


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--json"]
    if len(args) != 2:
        print("usage: python tests/vm/observe.py V1.beam V2.beam [--json]", file=sys.stderr)
        return 64
    try:
        records = observe(args[0], args[1])
    except HarnessError as exc:
        print(f"observe: {exc}", file=sys.stderr)
        return 1
    if "--json" in argv:
        for r in records:
            print(json.dumps(r, ensure_ascii=False))
    else:
        for outcome in summarize(records):
            print(outcome.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
