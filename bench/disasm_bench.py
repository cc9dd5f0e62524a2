"""Benchmark: ``beaminspect disasm --json`` against OTP's ``beam_disasm`` over every
installed OTP and Elixir beam, each as a whole process (start-up included).

    .venv/bin/python bench/disasm_bench.py [--runs 5] [--jobs N]

Prints the median wall time of each over ``--runs`` runs and their ratio.
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


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.run(cmd, stdout=null, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=None, help="passed to beaminspect -j")
    opts = ap.parse_args()
    files = corpus()
    if not files:
        sys.exit("no OTP beams under /usr/lib/erlang/lib")
    if shutil.which("erl") is None:
        sys.exit("erl is not installed")
    exe = os.path.join(os.path.dirname(sys.executable), "beaminspect")
    if not os.path.exists(exe):
        exe = shutil.which("beaminspect") or sys.exit("beaminspect is not installed")
    with tempfile.TemporaryDirectory() as d:
        listing = os.path.join(d, "files.eterm")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join(_erl_string(p) for p in files) + "].\n")
        erl = ["erl", "-noshell", "-noinput", "-eval",
               f"{{ok, [Files]}} = file:consult({_erl_string(listing)}), "
               "[beam_disasm:file(F) || F <- Files], halt()."]
        ours = [exe, "disasm", "--json", *files]
        if opts.jobs is not None:
            ours[2:2] = ["-j", str(opts.jobs)]
        results = {}
        for name, cmd in (("beam_disasm (erl)", erl), ("beaminspect disasm --json", ours)):
            times = [timed(cmd) for _ in range(opts.runs)]
            results[name] = times
    jobs = opts.jobs if opts.jobs is not None else len(os.sched_getaffinity(0))
    print(f"{len(files)} files, {opts.runs} runs each, beaminspect on {jobs} worker(s)")
    print(f"{'command':<28}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, times in results.items():
        print(f"{name:<28}{statistics.median(times):>10.2f}{min(times):>10.2f}{max(times):>10.2f}")
    a, b = (statistics.median(t) for t in results.values())
    print(f"ratio beaminspect / beam_disasm: {b / a:.2f}")


if __name__ == "__main__":
    main()
