"""Benchmark: ``beaminspect disasm --json`` and the text listing against OTP's ``beam_disasm`` over every
installed OTP and Elixir beam, each as a whole process (start-up included).  The anchor
is ``beam_disasm:file/1`` on each file in turn, its result dropped (not kept in a list).

    .venv/bin/python bench/disasm_bench.py [--runs 5] [--jobs N]

Prints the median wall time of each over ``--runs`` runs and their ratio.  The runs
alternate (erl, beaminspect, erl, ...) so that both see the same load on a shared
machine.  ``run(runs=5)`` returns the same figures as a dict (for bench/run.py).
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus() -> list[str]:
    return sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam")
                  + glob.glob("/usr/lib/elixir/lib/*/ebin/*.beam"))


def _erl_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return its wall seconds, the CPU seconds (user + sys) of its whole
    process tree (workers are reaped by it, so ``wait4`` counts them) and the peak RSS
    in MB of its largest process."""
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=null, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): "
                               f"{err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


ANCHOR = "beam_disasm (erl)"
OURS = "beaminspect disasm --json"
TEXT = "beaminspect disasm (text)"


def _beaminspect() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "beaminspect")
    if os.path.exists(exe):
        return exe
    found = shutil.which("beaminspect")
    if found is None:
        raise RuntimeError("beaminspect is not installed")
    return found


def run(runs: int = 5, jobs: int | None = None) -> dict:
    """Time both commands ``runs`` times each, interleaved, over the whole corpus.

    Returns ``{"files", "runs", "jobs", "times": {name: [s, ...]}, "median":
    {name: s}, "ratio", "cpu": {name: [s, ...]}, "median_cpu", "cpu_ratio", "peak_mb":
    {name: MB}}`` where ratio is beaminspect's median wall time over beam_disasm's, and
    cpu_ratio the same for the CPU time (user + sys) of the whole process tree.
    """
    files = corpus()
    if not files:
        raise RuntimeError("no OTP beams under /usr/lib/erlang/lib")
    if shutil.which("erl") is None:
        raise RuntimeError("erl is not installed")
    exe = _beaminspect()
    times: dict[str, list[float]] = {ANCHOR: [], OURS: [], TEXT: []}
    cpu: dict[str, list[float]] = {ANCHOR: [], OURS: [], TEXT: []}
    peak: dict[str, float] = {ANCHOR: 0.0, OURS: 0.0, TEXT: 0.0}
    with tempfile.TemporaryDirectory() as d:
        listing = os.path.join(d, "files.eterm")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join(_erl_string(p) for p in files) + "].\n")
        # File by file, each result dropped once made (a list comprehension in
        # -eval is interpreted and would keep every result: 785 MB at the peak).
        erl = ["erl", "-noshell", "-noinput", "-eval",
               f"{{ok, [Files]}} = file:consult({_erl_string(listing)}), "
               "lists:foreach(fun(F) -> beam_disasm:file(F) end, Files), halt()."]
        ours = [exe, "disasm", "--json", *files]
        text = [exe, "disasm", *files]
        if jobs is not None:
            ours[2:2] = ["-j", str(jobs)]
            text[2:2] = ["-j", str(jobs)]
        contenders = [(ANCHOR, erl), (OURS, ours), (TEXT, text)]
        for k in range(runs):
            # Rotate which goes first, so that none always follows another.
            order = contenders[k % 3:] + contenders[:k % 3]
            for name, cmd in order:
                wall, cpu_s, rss = timed(cmd)
                times[name].append(wall)
                cpu[name].append(cpu_s)
                peak[name] = max(peak[name], rss)
    median = {name: statistics.median(t) for name, t in times.items()}
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    return {
        "files": len(files),
        "runs": runs,
        "jobs": jobs if jobs is not None else len(os.sched_getaffinity(0)),
        "times": times,
        "median": median,
        "ratio": median[OURS] / median[ANCHOR],
        "text_ratio": median[TEXT] / median[ANCHOR],
        "cpu": cpu,
        "median_cpu": median_cpu,
        "cpu_ratio": median_cpu[OURS] / median_cpu[ANCHOR],
        "text_cpu_ratio": median_cpu[TEXT] / median_cpu[ANCHOR],
        "peak_mb": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=None, help="passed to beaminspect -j")
    opts = ap.parse_args()
    try:
        r = run(opts.runs, opts.jobs)
    except RuntimeError as e:
        sys.exit(str(e))
    print(f"{r['files']} files, {r['runs']} runs each (interleaved), "
          f"beaminspect on {r['jobs']} worker(s)")
    print(f"{'command':<28}{'median s':>10}{'min s':>10}{'max s':>10}{'CPU s':>10}{'peak MB':>10}")
    for name, times in r["times"].items():
        print(f"{name:<28}{statistics.median(times):>10.2f}{min(times):>10.2f}{max(times):>10.2f}"
              f"{r['median_cpu'][name]:>10.2f}{r['peak_mb'][name]:>10.0f}")
    print(f"ratio beaminspect --json / beam_disasm: {r['ratio']:.2f} (CPU {r['cpu_ratio']:.2f})")
    print(f"ratio beaminspect text / beam_disasm: {r['text_ratio']:.2f} "
          f"(CPU {r['text_cpu_ratio']:.2f})")


if __name__ == "__main__":
    main()
