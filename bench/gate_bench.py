"""Benchmark: ``beaminspect gate`` over two copies of the installed OTP lib tree against
``beam_lib:cmp_dirs/2`` over the same ebin pairs.

The second copy has a few modules replaced by sample modules recompiled under their
names, so some modules really change.  Both sides run as whole processes (interpreter
or VM start included): the gate as ``beaminspect gate A B --format json -o FILE`` (the
console script beside the running Python),
cmp_dirs as one ``erl`` that compares every application's ebin pair and halts.  The
runs alternate (gate, erl, erl, gate, ...); the median of ``runs`` runs of each is
reported, with their ratio (gate / cmp_dirs; below
1 the gate is faster).

    python bench/gate_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTP_LIB = "/usr/lib/erlang/lib"
SAMPLES = ROOT / "samples" / "src"

# (application prefix, module to replace, sample source compiled under its name)
REPLACEMENTS = [
    ("tools-", "eprof", "bi_flow"),
    ("stdlib-", "erl_tar", "bi_binaries"),
    ("inets-", "httpd_util", "bi_records"),
    ("ssh-", "ssh_sftpd", "bi_server"),
    ("ssl-", "ssl_logger", "bi_funs"),
]


def _beaminspect() -> str:
    """The ``beaminspect`` console script of the Python running this script (make
    bench runs it from a virtual environment holding a regular install)."""
    exe = Path(sys.executable).parent / "beaminspect"
    if exe.exists():
        return str(exe)
    found = shutil.which("beaminspect")
    if found is None:
        raise RuntimeError("beaminspect is not installed")
    return found


def prepare(work: Path) -> tuple[Path, Path, list[str]]:
    """Two copies of the OTP lib tree; returns (old, new, replaced beam paths)."""
    old, new = work / "old" / "lib", work / "new" / "lib"
    shutil.copytree(OTP_LIB, old, symlinks=True)
    shutil.copytree(OTP_LIB, new, symlinks=True)
    replaced = []
    build = work / "build"
    build.mkdir()
    for prefix, module, sample in REPLACEMENTS:
        targets = glob.glob(str(new / f"{prefix}*" / "ebin" / f"{module}.beam"))
        if not targets:
            continue
        src = (SAMPLES / f"{sample}.erl").read_text()
        src = src.replace(f"-module({sample}).", f"-module({module}).")
        path = build / f"{module}.erl"
        path.write_text(src)
        subprocess.run(["erlc", "+debug_info", "-o", str(build), str(path)], check=True,
                       capture_output=True, timeout=300)
        shutil.copyfile(build / f"{module}.beam", targets[0])
        replaced.append(targets[0])
    return old, new, replaced


def _ebin_pairs(old: Path, new: Path) -> list[tuple[str, str]]:
    pairs = []
    for d in sorted(old.iterdir()):
        a, b = d / "ebin", new / d.name / "ebin"
        if a.is_dir() and b.is_dir():
            pairs.append((str(a), str(b)))
    return pairs


def _cmp_dirs_expr(pairs) -> str:
    lst = ",".join(f'{{"{a}","{b}"}}' for a, b in pairs)
    return ("R = [beam_lib:cmp_dirs(A, B) || {A, B} <- [" + lst + "]], "
            "Changed = lists:sum([length(C) || {_, _, C} <- R]), "
            'io:format("~w~n", [Changed]), halt().')


def _time(cmd: list[str], cwd=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=900)
    return time.perf_counter() - t0, p


def _time_rss(cmd: list[str], cwd=None) -> tuple[float, subprocess.CompletedProcess, float]:
    """:func:`_time`, and the peak RSS in MB of the largest process of the run (its
    workers are reaped by it, so ``wait4`` counts them)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, os.waitstatus_to_exitcode(status),
                                           out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))
    return elapsed, done, usage.ru_maxrss / 1024


def run(runs: int = 5) -> dict:
    """Median wall-clock seconds of the gate and of cmp_dirs, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as d:
        work = Path(d)
        old, new, replaced = prepare(work)
        pairs = _ebin_pairs(old, new)
        out = work / "gate.json"
        gate_cmd = [_beaminspect(), "gate", str(old), str(new),
                    "--format", "json", "-o", str(out), "--fail-on", "never"]
        erl_cmd = ["erl", "-noshell", "-noinput", "-eval", _cmp_dirs_expr(pairs)]
        gate_times, erl_times = [], []
        changed_gate = changed_erl = None
        for k in range(runs):
            # Alternate which goes first, so that neither always follows the other.
            for which in (("gate", "erl") if k % 2 == 0 else ("erl", "gate")):
                if which == "gate":
                    t, p = _time(gate_cmd, cwd=str(work))
                    if p.returncode != 0:
                        raise RuntimeError(f"gate failed ({p.returncode}): {p.stderr}")
                    gate_times.append(t)
                else:
                    t, p = _time(erl_cmd)
                    if p.returncode != 0:
                        raise RuntimeError(f"erl failed: {p.stdout} {p.stderr}")
                    erl_times.append(t)
                    changed_erl = int(p.stdout.split()[-1])
        import json
        doc = json.loads(out.read_text())
        changed_gate = doc["summary"]["modules"]["changed"]
        modules = doc["new"]["modules"]
    g, e = statistics.median(gate_times), statistics.median(erl_times)
    return {
        "name": "gate",
        "modules": modules,
        "replaced": len(replaced),
        "changed_gate": changed_gate,
        "changed_cmp_dirs": changed_erl,
        "runs": runs,
        "gate_median_s": round(g, 3),
        "cmp_dirs_median_s": round(e, 3),
        "ratio": round(g / e, 3),
    }


ROOTS = Path(os.environ.get("BEAMINSPECT_ROOTS", "/var/cache/beaminspect/roots"))
FUNDIFF = ROOT / "tools" / "fundiff.escript"


def _root_lib(release: int) -> Path:
    return ROOTS / f"otp{release}" / "usr" / "lib" / "erlang" / "lib"


def trees_available() -> str | None:
    """None when the two-trees row can run, else why not."""
    for r in (27, 29):
        if not _root_lib(r).is_dir():
            return f"the OTP {r} root is not built (make oracles)"
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        return "running OTP 29's beam_disasm in its root needs chroot as root"
    return None


def run_trees(runs: int = 3) -> dict:
    """``beaminspect gate`` over OTP 27's and OTP 29's lib trees against OTP 29's own
    function-by-function diff of the same module pairs (tools/fundiff.escript, which
    disassembles both files of each differing pair with ``beam_disasm`` and compares
    them function by function, in the OTP 29 root).  Medians of interleaved runs."""
    old, new = _root_lib(27), _root_lib(29)
    root29 = ROOTS / "otp29"
    with tempfile.TemporaryDirectory(prefix="fundiff-", dir=root29 / "tmp") as d:
        work = Path(d)
        # OTP 29's VM sees only its root: OTP 27's beams are copied in, once.
        for beam in glob.glob(str(old / "*" / "ebin" / "*.beam")):
            rel = Path(beam).relative_to(old)
            (work / "old" / rel.parent).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(beam, work / "old" / rel)
        shutil.copyfile(FUNDIFF, work / "fundiff.escript")
        inside = "/" + str(work.relative_to(root29))
        erl_cmd = ["chroot", str(root29), "/usr/bin/env", "-i", "HOME=/tmp",
                   "PATH=/usr/bin:/bin", "escript", f"{inside}/fundiff.escript",
                   f"{inside}/old", "/usr/lib/erlang/lib"]
        out = work / "gate.json"
        gate_cmd = [_beaminspect(), "gate", str(old), str(new), "--format", "json", "-o",
                    str(out), "--fail-on", "never"]
        gate_times, erl_times = [], []
        differ = None
        rss = {"gate": 0.0, "erl": 0.0}
        for k in range(runs):
            for which in (("gate", "erl") if k % 2 == 0 else ("erl", "gate")):
                t, p, mb = _time_rss(gate_cmd if which == "gate" else erl_cmd,
                                     cwd=str(work) if which == "gate" else None)
                rss[which] = max(rss[which], mb)
                if which == "gate":
                    if p.returncode != 0:
                        raise RuntimeError(f"gate failed ({p.returncode}): {p.stderr}")
                    gate_times.append(t)
                else:
                    if p.returncode != 0:
                        raise RuntimeError(f"fundiff failed: {p.stderr[-2000:]}")
                    erl_times.append(t)
                    differ = len(p.stdout.splitlines())
        import json
        doc = json.loads(out.read_text())
        changed_gate = doc["summary"]["modules"]["changed"]
    g, e = statistics.median(gate_times), statistics.median(erl_times)
    return {"name": "gate (two trees)", "changed_gate": changed_gate,
            "fundiff_modules": differ, "runs": runs, "gate_median_s": round(g, 3),
            "fundiff_median_s": round(e, 3), "ratio": round(g / e, 3),
            "gate_peak_mb": round(rss["gate"], 1), "fundiff_peak_mb": round(rss["erl"], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    if shutil.which("erl") is None or not os.path.isdir(OTP_LIB):
        print("gate_bench: needs Erlang/OTP installed in /usr/lib/erlang", file=sys.stderr)
        return 2
    r = run(args.runs)
    print(f"modules per release: {r['modules']}, replaced: {r['replaced']}, changed: "
          f"gate {r['changed_gate']}, cmp_dirs {r['changed_cmp_dirs']}")
    print(f"gate      median {r['gate_median_s']:.3f} s")
    print(f"cmp_dirs  median {r['cmp_dirs_median_s']:.3f} s")
    print(f"ratio gate/cmp_dirs: {r['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
