"""``make bench``: beaminspect against its anchors, each as a whole process.

    .venv-bench/bin/python bench/run.py [--runs N] [--jobs N] [--skip-profile]

(``make bench`` makes ``.venv-bench`` with a regular install of the package first.)

Rows (every contender of a row runs on the same files, in the same invocation):

* ``show``: ``beaminspect show --json`` over every file, against ``beam_lib:chunks/2``
  for (atoms, exports, imports, attributes, compile_info, labeled_locals) over the same
  files in one ``erl -noshell`` process that ends with ``halt()``, and against pybeam
  (installed here into ``bench/.venv-pybeam``) reading the same chunks with
  ``bench/pybeam_read.py``.  Files pybeam cannot parse are counted and left out of
  every contender's list for the pybeam comparison.
* ``disasm``: ``beaminspect disasm --json`` against ``beam_disasm:file/1`` run file by
  file without keeping the results, measured by ``bench/disasm_bench.py``'s ``run()``.
* ``disasm`` (text): the text listing against the same anchor, in the same runs.
* ``gate``: see :func:`bench_gate`; and, when the OTP 27 and 29 roots are built, the gate
  over their two lib trees against OTP 29's own function-by-function diff of the same
  module pairs (``tools/fundiff.escript``, ``beam_disasm`` on both files of each pair).
* start-up: ``--version`` and ``show --json`` of one file.

The corpus is every ``.beam`` of the installed OTP and Elixir, or the bundled samples
when neither is installed.  Wall time is the median of ``--runs`` runs (at least 5); the
contenders of a row are interleaved run by run, in a rotating order, so that they share
the noise of a busy machine.  Peak RSS is measured two ways: the largest single process
(``ru_maxrss`` from ``wait4``) and the sum over the process tree (workers included),
sampled every few milliseconds from /proc.

Writes ``bench/RESULTS.md`` and raw results under ``bench/out/``.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(BENCH, "out")
PYBEAM_VENV = os.path.join(BENCH, ".venv-pybeam")
PY = sys.executable
CONSOLE = os.path.join(os.path.dirname(PY), "beaminspect")

#: The chunks beam_lib and pybeam are asked for: what ``show --json`` prints.
BEAM_LIB_CHUNKS = "[atoms, exports, imports, attributes, compile_info, labeled_locals]"

sys.path.insert(0, ROOT)


# ---------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------

def ensure_tabulate():
    try:
        import tabulate  # noqa: F401
    except ImportError:
        subprocess.run([PY, "-m", "pip", "install", "-q", "tabulate"], check=True)
    from tabulate import tabulate
    return tabulate


def ensure_pybeam() -> str | None:
    """The interpreter of bench/.venv-pybeam with pybeam installed, or None (with a
    message) when it cannot be installed."""
    py = os.path.join(PYBEAM_VENV, "bin", "python")
    try:
        if not os.path.exists(py):
            subprocess.run([PY, "-m", "venv", PYBEAM_VENV], check=True)
            with open(os.path.join(PYBEAM_VENV, ".gitignore"), "w") as f:
                f.write("*\n")
        ok = subprocess.run([py, "-c", "import pybeam"], capture_output=True).returncode == 0
        if not ok:
            subprocess.run([py, "-m", "pip", "install", "-q", "-r",
                            os.path.join(BENCH, "requirements-pybeam.txt")], check=True)
        return py
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"bench: pybeam could not be installed ({e}); its row is skipped", file=sys.stderr)
        return None


def corpus() -> tuple[list[str], str]:
    files = sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam")
                   + glob.glob("/usr/lib/elixir/lib/*/ebin/*.beam"))
    if files:
        return files, "installed OTP and Elixir (lib/*/ebin/*.beam)"
    files = sorted(glob.glob(os.path.join(ROOT, "samples", "**", "*.beam"), recursive=True))
    return files, "bundled samples (no OTP or Elixir installed)"


def _erl_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_lists(files: list[str], name: str) -> tuple[str, str]:
    """A plain list (one path a line) and an Erlang term file of ``files``."""
    plain = os.path.join(OUT, f"{name}.txt")
    with open(plain, "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in files))
    eterm = os.path.join(OUT, f"{name}.eterm")
    with open(eterm, "w", encoding="utf-8") as f:
        f.write("[" + ",\n".join(_erl_string(p) for p in files) + "].\n")
    return plain, eterm


def _output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---------------------------------------------------------------------------
# measuring one process
# ---------------------------------------------------------------------------

def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants (0 once it has exited)."""
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


#: GNU time reports the peak RSS of the command alone.  ``ru_maxrss`` from wait4 on a
#: child of this process would also count this interpreter's pages, which the child
#: holds between fork and exec.
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` (stdout discarded): wall seconds, the largest process's peak RSS and
    the sampled peak of the whole tree's RSS, in MB."""
    peak = [0]
    done = threading.Event()
    rss_file = os.path.join(OUT, "maxrss.txt")
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + cmd
    with open(os.devnull, "wb") as null, open(os.path.join(OUT, "stderr.txt"), "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=err, stdin=subprocess.DEVNULL)

        def sample():
            while not done.wait(0.005):
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        th.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        with open(os.path.join(OUT, "stderr.txt"), errors="replace") as f:
            tail = f.read()[-1500:]
        raise RuntimeError(f"{' '.join(cmd[:8])} ... exited {proc.returncode}: {tail}")
    maxrss = usage.ru_maxrss
    if GNU_TIME:
        with open(rss_file) as f:
            maxrss = int(f.read().split()[-1])
    cpu = usage.ru_utime + usage.ru_stime  # the process and the children it waited for
    return {"wall": wall, "cpu": cpu, "rss_mb": maxrss / 1024, "tree_mb": peak[0] / 1024}


def interleave(contenders: dict[str, list[str]], runs: int) -> dict[str, list[dict]]:
    """Each contender ``runs`` times, run by run, the order rotated every run."""
    names = list(contenders)
    results: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            results[n].append(measure(contenders[n]))
    return results


def summarise(results: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for n, rs in results.items():
        out[n] = {"median_s": statistics.median(r["wall"] for r in rs),
                  "min_s": min(r["wall"] for r in rs),
                  "cpu_s": statistics.median(r["cpu"] for r in rs),
                  "rss_mb": max(r["rss_mb"] for r in rs),
                  "tree_mb": max(r["tree_mb"] for r in rs),
                  "runs": len(rs)}
    return out


# ---------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------

def beaminspect_show(files: list[str], jobs: int | None, console: bool = False) -> list[str]:
    base = [CONSOLE] if console else [PY, "-m", "beaminspect"]
    cmd = base + ["show", "--json"]
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    return cmd + files


def beam_lib_chunks(eterm: str) -> list[str]:
    return ["erl", "-noshell", "-noinput", "-eval",
            f"{{ok, [Files]}} = file:consult({_erl_string(eterm)}), "
            f"[{{ok, _}} = beam_lib:chunks(F, {BEAM_LIB_CHUNKS}) || F <- Files], halt()."]


def check_show_output(files: list[str], jobs: int | None) -> None:
    """Before timing: the fast path, the typer command and the library's
    ``dumps(module_summary(m))`` must print the same text."""
    fast = subprocess.run(beaminspect_show(files, jobs), capture_output=True).stdout
    full = subprocess.run(beaminspect_show(files, jobs, console=True), capture_output=True).stdout
    if fast != full:
        raise SystemExit("bench: python -m beaminspect and the beaminspect command differ")
    code = ("import sys\n"
            "from beaminspect import load, BeamError\n"
            "from beaminspect.render.json_out import dumps, module_summary\n"
            "for p in sys.stdin.read().splitlines():\n"
            "    try:\n"
            "        print(dumps(module_summary(load(p))))\n"
            "    except BeamError:\n"
            "        pass\n")
    ref = subprocess.run([PY, "-c", code], input="\n".join(files).encode(),
                         capture_output=True).stdout
    if ref != fast:
        raise SystemExit("bench: show --json differs from dumps(module_summary(m))")


def row(name: str, anchor: str, summary: dict[str, dict], ours: str, nfiles: int,
        note: str = "") -> dict:
    a, b = summary[anchor], summary[ours]
    return {"row": name, "files": nfiles, "beaminspect_s": b["median_s"],
            "anchor": anchor, "anchor_s": a["median_s"], "ratio": b["median_s"] / a["median_s"],
            "cpu_ratio": b["cpu_s"] / a["cpu_s"],
            "beaminspect_rss_mb": b["rss_mb"], "beaminspect_tree_mb": b["tree_mb"],
            "anchor_rss_mb": a["rss_mb"], "anchor_tree_mb": a["tree_mb"], "note": note}


def bench_show(files: list[str], runs: int, jobs: int | None, pybeam_py: str | None
               ) -> tuple[list[dict], dict]:
    plain, eterm = write_lists(files, "files")
    check_show_output(files, jobs)
    contenders = {
        "beaminspect show --json": beaminspect_show(files, jobs),
        "beaminspect show --json (console script)": beaminspect_show(files, jobs, console=True),
        "beam_lib:chunks/2": beam_lib_chunks(eterm),
    }
    excluded: list = []
    pb_files = files
    if pybeam_py is not None:
        report = os.path.join(OUT, "pybeam_failures.json")
        subprocess.run([pybeam_py, os.path.join(BENCH, "pybeam_read.py"), plain, "--report",
                        report], check=True, capture_output=True)
        with open(report) as f:
            excluded = json.load(f)["failed"]
        bad = {p for p, _ in excluded}
        pb_files = [p for p in files if p not in bad]
        pb_plain, pb_eterm = write_lists(pb_files, "files_pybeam")
        if excluded:
            contenders["beaminspect show --json (pybeam's files)"] = beaminspect_show(pb_files, jobs)
        contenders["pybeam"] = [pybeam_py, os.path.join(BENCH, "pybeam_read.py"), pb_plain]
    results = interleave(contenders, runs)
    summary = summarise(results)
    rows = [row("show --json vs beam_lib:chunks/2", "beam_lib:chunks/2", summary,
                "beaminspect show --json", len(files)),
            row("show --json (console script) vs beam_lib:chunks/2", "beam_lib:chunks/2",
                summary, "beaminspect show --json (console script)", len(files))]
    if pybeam_py is not None:
        ours = ("beaminspect show --json (pybeam's files)" if excluded
                else "beaminspect show --json")
        note = (f"{len(excluded)} files pybeam cannot parse left out of both sides"
                if excluded else "pybeam parses every file")
        rows.append(row("show --json vs pybeam", "pybeam", summary, ours, len(pb_files), note))
    return rows, {"results": results, "summary": summary, "pybeam_failures": excluded}


def bench_disasm(runs: int, jobs: int | None) -> tuple[list[dict], dict]:
    """The disassembly row, measured by bench/disasm_bench.py's ``run()`` (its own
    interleaved runs); only the peak RSS is added here."""
    if not os.path.exists(os.path.join(BENCH, "disasm_bench.py")):
        return [], {"skipped": "bench/disasm_bench.py does not exist yet"}
    import resource
    sys.path.insert(0, BENCH)
    import disasm_bench
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        r = disasm_bench.run(runs, jobs)
    except Exception as e:  # noqa: BLE001 - one row's failure must not lose the others
        return [], {"skipped": f"disasm_bench.run failed: {type(e).__name__}: {e}"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ours, anchor = r["median"][disasm_bench.OURS], r["median"][disasm_bench.ANCHOR]
    cpu = r.get("median_cpu", {})
    peak = r.get("peak_mb", {})
    note = "from bench/disasm_bench.py"
    if cpu:
        note += (f"; median CPU s {cpu[disasm_bench.OURS]:.2f} vs "
                 f"{cpu[disasm_bench.ANCHOR]:.2f}")
    if not peak and after > before:
        note += f"; largest process of its runs: {after / 1024:.0f} MB"
    rows = [{"row": "disasm --json vs beam_disasm:file/1", "files": r["files"],
             "beaminspect_s": ours, "anchor": "beam_disasm:file/1", "anchor_s": anchor,
             "ratio": r["ratio"], "cpu_ratio": r.get("cpu_ratio"),
             "beaminspect_rss_mb": peak.get(disasm_bench.OURS), "beaminspect_tree_mb": None,
             "anchor_rss_mb": peak.get(disasm_bench.ANCHOR), "anchor_tree_mb": None,
             "note": note}]
    if disasm_bench.TEXT in r["median"]:
        text = r["median"][disasm_bench.TEXT]
        rows.append({"row": "disasm (text) vs beam_disasm:file/1", "files": r["files"],
                     "beaminspect_s": text, "anchor": "beam_disasm:file/1",
                     "anchor_s": anchor, "ratio": r["text_ratio"],
                     "cpu_ratio": r.get("text_cpu_ratio"),
                     "beaminspect_rss_mb": peak.get(disasm_bench.TEXT),
                     "beaminspect_tree_mb": None, "anchor_rss_mb": peak.get(disasm_bench.ANCHOR),
                     "anchor_tree_mb": None,
                     "note": f"from bench/disasm_bench.py; median CPU s "
                             f"{cpu.get(disasm_bench.TEXT, 0):.2f} vs "
                             f"{cpu.get(disasm_bench.ANCHOR, 0):.2f}"})
    return rows, r


# -- the gate row: hook ------------------------------------------------------
def bench_gate(runs: int) -> tuple[list[dict], dict]:
    """HOOK for the gate row: ``beaminspect gate OLD NEW`` on two copies of the OTP lib
    tree with a few modules changed, against ``beam_lib:cmp_dirs/2`` in erl over the same
    directories.  Runs only when ``beaminspect gate`` exists; the measurement itself is
    ``bench/gate_bench.py``'s ``run(runs)`` when that file is present."""
    probe = subprocess.run([PY, "-m", "beaminspect", "gate", "--help"], capture_output=True)
    if probe.returncode != 0:
        return [], {"skipped": "beaminspect has no gate command yet"}
    if not os.path.exists(os.path.join(BENCH, "gate_bench.py")) or shutil.which("erl") is None \
            or not os.path.isdir("/usr/lib/erlang/lib"):
        return [], {"skipped": "needs bench/gate_bench.py and an installed OTP"}
    import resource
    sys.path.insert(0, BENCH)
    import gate_bench
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        r = gate_bench.run(runs)
    except Exception as e:  # noqa: BLE001 - one row's failure must not lose the others
        return [], {"skipped": f"gate_bench.run failed: {type(e).__name__}: {e}"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = [{"row": "gate vs beam_lib:cmp_dirs/2", "files": r.get("modules"),
             "beaminspect_s": r["gate_median_s"], "anchor": "beam_lib:cmp_dirs/2",
             "anchor_s": r["cmp_dirs_median_s"], "ratio": r["ratio"],
             "beaminspect_rss_mb": None, "beaminspect_tree_mb": None, "anchor_rss_mb": None,
             "anchor_tree_mb": None,
             "note": f"from bench/gate_bench.py; {r.get('replaced')} modules replaced, changed: "
                     f"gate {r.get('changed_gate')}, cmp_dirs {r.get('changed_cmp_dirs')}"
                     + (f"; largest process {after / 1024:.0f} MB" if after > before else "")}]
    why = gate_bench.trees_available()
    if why is not None:
        r["trees"] = {"skipped": why}
        return rows, r
    try:
        t = gate_bench.run_trees(max(3, runs // 2))
    except Exception as e:  # noqa: BLE001 - one row's failure must not lose the others
        r["trees"] = {"skipped": f"gate_bench.run_trees failed: {type(e).__name__}: {e}"}
        return rows, r
    r["trees"] = t
    rows.append({"row": "gate OTP 27 -> 29 vs beam_disasm fundiff", "files": t["changed_gate"],
                 "beaminspect_s": t["gate_median_s"], "anchor": "fundiff.escript (OTP 29)",
                 "anchor_s": t["fundiff_median_s"], "ratio": t["ratio"],
                 "beaminspect_rss_mb": t["gate_peak_mb"], "beaminspect_tree_mb": None,
                 "anchor_rss_mb": t["fundiff_peak_mb"], "anchor_tree_mb": None,
                 "note": f"{t['runs']} runs; changed modules: gate {t['changed_gate']}, "
                         f"with a changed function per beam_disasm {t['fundiff_modules']}"})
    return rows, r


def bench_startup(runs: int, one_file: str) -> list[dict]:
    contenders = {
        "python -c pass": [PY, "-c", "pass"],
        "erl -noshell -eval 'halt().'": ["erl", "-noshell", "-noinput", "-eval", "halt()."],
        "beaminspect --version (console script)": [CONSOLE, "--version"],
        "python -m beaminspect --version": [PY, "-m", "beaminspect", "--version"],
        "beaminspect show --json FILE (console script)": [CONSOLE, "show", "--json", one_file],
        "python -m beaminspect show --json FILE": [PY, "-m", "beaminspect", "show", "--json",
                                                   one_file],
    }
    if shutil.which("erl") is None:
        del contenders["erl -noshell -eval 'halt().'"]
    s = summarise(interleave(contenders, max(runs, 10)))
    return [{"command": n, "median_s": v["median_s"], "rss_mb": v["rss_mb"]} for n, v in s.items()]


#: The anchor of the start-up rows: an Erlang VM that starts and halts.
ERL_HALT = "erl -noshell -eval 'halt().'"


def bench_startup_rows(runs: int, one_file: str) -> tuple[list[dict], dict]:
    """Start-up rows: ``beaminspect --version`` and ``beaminspect show --json FILE`` (the
    installed command, else ``python -m beaminspect``) against an Erlang VM that starts
    and halts, each a whole process."""
    if shutil.which("erl") is None:
        return [], {"skipped": "needs erl"}
    base = [CONSOLE] if os.path.exists(CONSOLE) else [PY, "-m", "beaminspect"]
    contenders = {
        ERL_HALT: ["erl", "-noshell", "-noinput", "-eval", "halt()."],
        "beaminspect --version": base + ["--version"],
        "beaminspect show --json FILE": base + ["show", "--json", one_file],
    }
    summary = summarise(interleave(contenders, max(runs, 10)))
    how = "the installed command" if base == [CONSOLE] else "python -m beaminspect"
    rows = [row(f"start-up: {name} vs {ERL_HALT}", ERL_HALT, summary, name, n,
                note=f"{how}, a whole process")
            for name, n in (("beaminspect --version", 0), ("beaminspect show --json FILE", 1))]
    return rows, {"summary": summary}


# ---------------------------------------------------------------------------
# profile, machine, report
# ---------------------------------------------------------------------------

def profile_jobs(job, files: list[str], top: int = 15, name: str = "show"
                 ) -> tuple[list[dict], list[tuple[str, float]], float]:
    """cProfile of ``job(path)`` over ``files`` in this process (serial): the top
    functions by own time, own time grouped by where it is spent, and the total."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for p in files:
        job(p)
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    total = st.total_tt
    entries = []
    for (fname, line, func), (cc, nc, tt, ct, _) in st.stats.items():
        short = fname.replace(ROOT + os.sep, "")
        short = re.sub(r".*/lib/python3\.\d+/", "", short)
        entries.append({"function": f"{short}:{line}({func})" if line else func, "calls": nc,
                        "tottime": tt, "cumtime": ct})
    entries.sort(key=lambda e: -e["tottime"])
    groups: dict[str, float] = {}
    for (fname, _, func), (_, _, tt, _, _) in st.stats.items():
        if "beaminspect" + os.sep in fname:
            key = "beaminspect/" + fname.split("beaminspect" + os.sep, 1)[1]
        elif "json" in fname or func.startswith("<method 'encode"):
            key = "json (stdlib)"
        elif fname == "~":
            key = {"<method 'decompress' of 'zlib.Decompress' objects>": "zlib",
                   "<method 'update' of '_hashlib.HASH' objects>": "hashlib (md5)",
                   "<method 'read' of '_io.BufferedReader' objects>": "file reads"}.get(
                func, "builtins (list/str/struct methods)")
        else:
            key = "other stdlib"
        groups[key] = groups.get(key, 0.0) + tt
    st.dump_stats(os.path.join(OUT, f"{name}_profile.pstats"))
    return entries[:top], sorted(groups.items(), key=lambda kv: -kv[1]), total


def profile_show(files: list[str], top: int = 15):
    from beaminspect.cli.jobs import show_json_job
    return profile_jobs(show_json_job, files, top, "show")


#: The disassembly profile takes every DISASM_PROFILE_STRIDE-th file (cProfile triples
#: the time of this call-heavy code).
DISASM_PROFILE_STRIDE = 4


def profile_disasm(files: list[str], top: int = 15):
    from beaminspect.cli.jobs import disasm_json_job
    return profile_jobs(disasm_json_job, files[::DISASM_PROFILE_STRIDE], top, "disasm")


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": cpu,
            "memory": mem, "loadavg_at_start": " ".join(f"{x:.2f}" for x in load),
            "platform": platform.platform()}


def versions(pybeam_py: str | None) -> dict:
    from beaminspect import __version__
    otp = _output(["erl", "-noshell", "-noinput", "-eval",
                   'io:format("~s (erts ~s)", [erlang:system_info(otp_release), '
                   'erlang:system_info(version)]), halt().']) if shutil.which("erl") else ""
    elixir = ""
    if shutil.which("elixir"):
        lines = _output(["elixir", "--version"]).splitlines()
        elixir = lines[-1] if lines else ""
    pybeam = ""
    if pybeam_py:
        pybeam = _output([pybeam_py, "-c", "import importlib.metadata as m; "
                          "print(m.version('pybeam'), 'construct', m.version('construct'))"])
    return {"python": platform.python_version(), "otp": otp or "not installed",
            "elixir": elixir or "not installed", "beaminspect": __version__,
            "pybeam": pybeam or "not installed"}


def _fmt(x, unit=""):
    return "" if x is None else f"{x:.2f}{unit}"


def render(tabulate, info: dict) -> str:
    rows = info["rows"]
    table = tabulate(
        [[r["row"], r["files"], _fmt(r["beaminspect_s"]), r["anchor"], _fmt(r["anchor_s"]),
          _fmt(r["ratio"], "x"), _fmt(r.get("cpu_ratio"), "x"), _fmt(r["beaminspect_rss_mb"]),
          _fmt(r["beaminspect_tree_mb"]),
          _fmt(r["anchor_rss_mb"]), r["note"]] for r in rows],
        headers=["row", "files", "beaminspect s", "anchor", "anchor s", "ratio", "CPU ratio",
                 "bi peak MB", "bi tree MB", "anchor peak MB", "note"],
        tablefmt="github")
    startup = tabulate([[s["command"], _fmt(s["median_s"]), _fmt(s["rss_mb"])]
                        for s in info["startup"]],
                       headers=["command", "median s", "peak MB"], tablefmt="github")
    per_contender = tabulate(
        [[n, v["runs"], _fmt(v["median_s"]), _fmt(v["min_s"]), _fmt(v["cpu_s"]),
          _fmt(v["rss_mb"]), _fmt(v["tree_mb"])] for n, v in info["show"]["summary"].items()],
        headers=["contender", "runs", "median s", "min s", "median CPU s (user+sys)",
                 "peak MB (largest process)", "peak MB (process tree)"], tablefmt="github")
    m, v = info["machine"], info["versions"]
    out = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run.py) on {info['date']}.  Corpus: {info['corpus']}, "
        f"{info['nfiles']} files.  Medians of {info['runs']} runs per contender, contenders "
        "interleaved run by run; every time is a whole process (start-up included).  "
        "Ratio = beaminspect / anchor in wall time (below 1: beaminspect is faster); CPU "
        "ratio: the same for median user+sys seconds, which a busy machine disturbs less.  "
        "Peak MB: the "
        "largest single process (`ru_maxrss`); tree MB: the sampled sum over the process "
        "and its workers.",
        "",
        "## Machine",
        "",
        f"- CPUs: {m['nproc']} (usable: {m['affinity']}), {m['cpu']}",
        f"- memory: {m['memory']}; load average at start: {m['loadavg_at_start']}",
        f"- {m['platform']}",
        f"- Python {v['python']}; OTP {v['otp']}; {v['elixir']}; beaminspect {v['beaminspect']}; "
        f"pybeam {v['pybeam']}",
        "",
        "## Rows",
        "",
        table,
        "",
        "`beaminspect show --json` runs as `python -m beaminspect`; the console-script row "
        "runs the installed `beaminspect` command.  Both run the typer app.",
        "",
        "### show: every contender",
        "",
        per_contender,
        "",
    ]
    if info["show"].get("pybeam_failures"):
        out += [f"pybeam could not parse {len(info['show']['pybeam_failures'])} files; "
                "see bench/out/pybeam_failures.json.", ""]
    for key in ("disasm", "gate"):
        if info[key].get("skipped"):
            out += [f"{key} row skipped: {info[key]['skipped']}", ""]
    out += ["## Start-up", "", startup, ""]
    for key, what in (("profile", "show --json"), ("profile_disasm", "disasm --json")):
        if not info.get(key):
            continue
        top, groups, total = info[key]
        nfiles = info["nfiles"] if key == "profile" else info.get("profile_disasm_files")
        out += [
            f"## What the profile shows is left: {what}",
            "",
            f"cProfile of `{what}` over {nfiles} files in one process, serially: "
            f"{total:.2f} s of profiled time (cProfile roughly doubles or triples the real "
            "time of small calls).  Where it goes:",
            "",
            tabulate([[k, f"{t:.3f}", f"{100 * t / total:.0f}%"] for k, t in groups],
                     headers=["where", "tottime s", "share"], tablefmt="github"),
            "",
            "Top functions by own time:",
            "",
            tabulate([[e["function"], e["calls"], f"{e['tottime']:.3f}", f"{e['cumtime']:.3f}"]
                      for e in top], headers=["function", "calls", "tottime s", "cumtime s"],
                     tablefmt="github"),
            "",
        ]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="beaminspect against its anchors")
    ap.add_argument("--runs", type=int, default=5, help="runs per contender (at least 5)")
    ap.add_argument("--jobs", type=int, default=None, help="beaminspect -j (default: all cores)")
    ap.add_argument("--skip-profile", action="store_true")
    ap.add_argument("--only", choices=("show", "disasm", "gate", "startup"), action="append",
                    help="run only these rows (repeatable); RESULTS.md is written only "
                         "when every row runs")
    opts = ap.parse_args(argv)
    runs = max(5, opts.runs)
    only = set(opts.only or ("show", "disasm", "gate", "startup"))
    os.makedirs(OUT, exist_ok=True)
    # Commands run from here, so that ``python -m beaminspect`` imports the installed
    # package, as ``beaminspect`` does, and not the source tree.
    os.chdir(OUT)
    tabulate = ensure_tabulate()
    if shutil.which("erl") is None:
        print("bench: erl (Erlang/OTP) is needed for the anchors", file=sys.stderr)
        return 2
    files, corpus_name = corpus()
    pybeam_py = ensure_pybeam() if "show" in only else None
    info = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "corpus": corpus_name,
            "nfiles": len(files), "runs": runs, "machine": machine(),
            "versions": versions(pybeam_py), "rows": [], "show": {"summary": {}},
            "disasm": {}, "gate": {}, "startup": []}
    if "show" in only:
        rows, info["show"] = bench_show(files, runs, opts.jobs, pybeam_py)
        info["rows"] += rows
    if "disasm" in only:
        rows, info["disasm"] = bench_disasm(runs, opts.jobs)
        info["rows"] += rows
    if "gate" in only:
        rows, info["gate"] = bench_gate(runs)
        info["rows"] += rows
    if "startup" in only:
        info["startup"] = bench_startup(runs, files[0])
        rows, info["startup_rows"] = bench_startup_rows(runs, files[0])
        info["rows"] += rows
    if not opts.skip_profile and "show" in only:
        info["profile"] = profile_show(files)
    if not opts.skip_profile and "disasm" in only:
        info["profile_disasm"] = profile_disasm(files)
        info["profile_disasm_files"] = len(files[::DISASM_PROFILE_STRIDE])
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)
    text = render(tabulate, info)
    print(text)
    if only == {"show", "disasm", "gate", "startup"}:
        with open(os.path.join(BENCH, "RESULTS.md"), "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
