"""``beaminspect live`` and ``diff``/``gate --node`` against real nodes (OTP 25 on the
host): what the node reports, and the predicted fates held to what the node then does.

Each test starts its own node (tests/live/target.escript: v1 of a scenario pair under
samples/pairs/, its scenario's processes started), asks it through the command line,
then has the node load v2 and purge at once, and compares in both directions: every
process predicted ``killed`` died, and every process that died was predicted ``killed``
or ``at_risk``.  Faults (a node that is not running, a wrong cookie, a host that does not
resolve, a client that does not answer, a release outside the model) are one line and
exit 2, and the cookie never shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys

import jsonschema
import pytest

from corpus import ROOT
from otp import HAVE_ERL, require_otp

pytestmark = [
    pytest.mark.otp,
    pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl) is not installed: the live "
                       "tests start real nodes"),
]

PAIRS = os.path.join(ROOT, "samples", "pairs")
TARGET = os.path.join(ROOT, "tests", "live", "target.escript")
HOST = socket.gethostname().split(".")[0]
DIFF_SCHEMA = json.loads(open(os.path.join(ROOT, "schemas", "diff.schema.json")).read())
GATE_SCHEMA = json.loads(open(os.path.join(ROOT, "schemas", "gate.schema.json")).read())
LIVE_SCHEMA = json.loads(open(os.path.join(ROOT, "schemas", "live.schema.json")).read())

#: Scenario pairs whose processes the node runs; Elixir ones need Elixir on the host.
SCENARIOS = ["local_loop_killed", "external_loop_survives", "blocked_in_call",
             "gen_server_sleeps", "gen_server_code_change_ok", "fun_spawned",
             "record_in_state", "ex_blocked"]


@pytest.fixture(scope="module", autouse=True)
def epmd():
    """The host's epmd, which every test node registers with: ``erl -sname`` starts it,
    but a node that turns distribution on from inside (net_kernel:start/1, as the
    scenario node does) needs it running already.  Stopped afterwards if started here
    (epmd refuses while a node is still registered, which is then left as it is)."""
    epmd = shutil.which("epmd")
    if epmd is None:
        pytest.skip("epmd is not on PATH: the live tests' nodes need it")
    running = subprocess.run([epmd, "-names"], capture_output=True, timeout=10).returncode == 0
    if not running:
        subprocess.run([epmd, "-daemon"], check=True, timeout=10)
    yield
    if not running:
        subprocess.run([epmd, "-kill"], capture_output=True, timeout=10)


def _beams(pair: str) -> tuple[str, str]:
    v1 = os.path.join(PAIRS, pair, "v1")
    name = next(f for f in sorted(os.listdir(v1)) if f.endswith(".beam"))
    return os.path.join(v1, name), os.path.join(PAIRS, pair, "v2", name)


def _key(pid: str) -> tuple[int, int]:
    """A pid as the node writes it (<0.85.0>) and as a remote node sees it
    (<8838.85.0>): the same process has the same last two numbers."""
    _n, a, b = pid.strip("<>").split(".")
    return int(a), int(b)


class Node:
    """A node of OTP ``release`` (the host's, or one in a root of tests/otp.py, reached
    over the loopback through the same epmd) running v1 of ``pair``; stopped on exit."""

    def __init__(self, pair: str, release: int = 25) -> None:
        self.v1, self.v2 = _beams(pair)
        self.name = f"bi_live_{os.getpid()}_{os.urandom(3).hex()}"
        self.cookie = "c" + os.urandom(8).hex()
        rel = require_otp(release)
        self._scratch = rel.scratch()
        s = self._scratch
        argv = rel.command(["escript", s.stage(TARGET), self.name, self.cookie,
                            s.stage(self.v1), s.stage(self.v2)])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        ready = self._read()
        assert ready.get("ready"), ready
        self.node = ready["node"]
        self.module = ready["module"]
        self.procs = {_key(p["pid"]): p["label"] for p in ready["procs"]}

    def _read(self) -> dict:
        """The node's next JSON line; its logger's reports, which go to the same
        output, are kept for the error if the node stops."""
        other = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise AssertionError("the test node stopped: "
                                     + ("".join(other) + err)[-800:])
            if line.startswith("{"):
                return json.loads(line)
            other.append(line)

    def command(self, what: str) -> dict:
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self._scratch.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beaminspect", *args], capture_output=True,
                          text=True, timeout=120, env=env)


#: Per scenario: (pid key -> predicted fate), (pid key -> died), for the summary.
RESULTS: dict[str, tuple[dict, dict]] = {}


def _fates(doc: dict) -> dict:
    return {_key(p["pid"]): p["fate"] for p in doc["live"]["processes"]}


@pytest.mark.parametrize("release", [25, 27, 29])
@pytest.mark.parametrize("pair", SCENARIOS)
def test_predicted_fates_hold_on_the_node(pair, release):
    rel = require_otp(release)
    if pair.startswith("ex_") and not os.path.isdir(rel.elixir_lib):
        pytest.skip(f"Elixir is not installed with OTP {release}: the Elixir scenario "
                    "needs it on the node")
    with Node(pair, release) as n:
        r = _cli("diff", n.v1, n.v2, "--node", n.node, "--cookie", n.cookie,
                 "--format", "json", "--fail-on", "never")
        assert r.returncode == 0, r.stderr
        assert n.cookie not in r.stdout + r.stderr
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, DIFF_SCHEMA)
        live = doc["live"]
        assert live["node"] == n.node and live["otp_release"] == release
        assert live["drift"] == [] and live["old_code"] == []
        fates = _fates(doc)
        after = n.command("upgrade")
    died = {_key(p["pid"]): not p["alive"] for p in after["procs"]}
    RESULTS[(pair, release)] = (fates, died)
    predicted = {k: fates.get(k, "not listed") for k in n.procs}
    print(f"\nOTP {release} {pair}: predicted {predicted}; died {died}")
    # Every scenario process the node killed was predicted killed or at risk...
    for k, gone in died.items():
        if gone:
            assert fates.get(k) in ("killed", "at_risk"), (pair, n.procs[k], fates.get(k))
    # ...and every process predicted killed died.
    for k, fate in fates.items():
        if fate == "killed" and k in died:
            assert died[k], (pair, n.procs.get(k), "predicted killed, survived")
    # The live findings follow the fates.
    kinds = [f["kind"] for f in doc["findings"]]
    assert kinds.count("live_process_killed") == sum(1 for f in fates.values() if f == "killed")


def test_predictions_are_not_vacuous():
    """Across the scenarios the model predicted kills that happened and processes that
    survived (the two-way checks above hold on something)."""
    if len(RESULTS) < 4:
        pytest.skip("needs the scenario tests of this module to have run first")
    killed = sum(1 for fates, died in RESULTS.values()
                 for k, f in fates.items() if f == "killed" and died.get(k))
    survived = sum(1 for fates, died in RESULTS.values()
                   for k, f in fates.items() if f == "survives" and died.get(k) is False)
    print(f"\nlive: {killed} predicted kills confirmed, {survived} predicted survivors alive")
    assert killed >= 3 and survived >= 1


def test_live_reports_modules_and_processes():
    with Node("local_loop_killed") as n:
        r = _cli("live", n.node, "--cookie", n.cookie, "--json")
        assert r.returncode == 0, r.stderr
        assert n.cookie not in r.stdout + r.stderr
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, LIVE_SCHEMA)
        import beaminspect
        want = beaminspect.load(n.v1).md5.hex()
        mods = {m["module"]: m for m in doc["modules"]}
        assert mods[n.module]["md5"] == want and mods[n.module]["old_code"] is False
        (pid,) = n.procs
        mine = [p for p in doc["processes"] if _key(p["pid"]) == pid]
        assert len(mine) == 1
        assert mine[0]["current_function"] == f"{n.module}:loop/1" and mine[0]["waiting"]
        assert mine[0]["pid"] in mods[n.module]["processes"]
        text = _cli("live", n.node, "--cookie", n.cookie, "-m", n.module)
        assert text.returncode == 0 and f"{n.module}:loop/1" in text.stdout


def test_gate_with_node(tmp_path):
    """The gate over two directories, with the node: the live object, the kill as an
    error finding, exit 1."""
    with Node("local_loop_killed") as n:
        for tag, src in (("old", n.v1), ("new", n.v2)):
            (tmp_path / tag).mkdir()
            shutil.copy(src, tmp_path / tag)
        r = _cli("gate", str(tmp_path / "old"), str(tmp_path / "new"), "--node", n.node,
                 "--cookie", n.cookie, "--format", "json")
        assert r.returncode == 1, r.stderr
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, GATE_SCHEMA)
        (pid,) = n.procs
        assert _fates(doc) == {pid: "killed"}
        assert any(f["kind"] == "live_process_killed" and f["severity"] == "error"
                   for f in doc["findings"])
        md = _cli("gate", str(tmp_path / "old"), str(tmp_path / "new"), "--node", n.node,
                  "--cookie", n.cookie, "--format", "markdown")
        assert f"#### Node `{n.node}`" in md.stdout


@pytest.mark.parametrize("command", ["gate", "diff"])
def test_an_upgrade_onto_another_emulator_restarts_the_node(tmp_path, command):
    """--target-otp other than the release the node runs: the node restarts before any
    hot load, so none of its processes now is given a fate at the purge (the process
    test_gate_with_node predicts killed), one live_restart finding says why, and the
    module's own prediction stays, about the processes the restart starts.  With the
    node's own release as the target, the fates come back."""
    with Node("local_loop_killed") as n:
        if command == "gate":
            for tag, src in (("old", n.v1), ("new", n.v2)):
                (tmp_path / tag).mkdir()
                shutil.copy(src, tmp_path / tag)
            args = ["gate", str(tmp_path / "old"), str(tmp_path / "new")]
            schema = GATE_SCHEMA
        else:
            args = ["diff", n.v1, n.v2]
            schema = DIFF_SCHEMA
        base = args + ["--node", n.node, "--cookie", n.cookie, "--otp", "25",
                       "--format", "json"]
        r = _cli(*base, "--target-otp", "27")
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, schema)
        assert doc["live"]["restart"] is True
        assert doc["live"]["processes"] == [] and doc["live"]["old_code"] == []
        kinds = [f["kind"] for f in doc["findings"]]
        assert "live_restart" in kinds and "live_process_killed" not in kinds
        assert "purge_kills_local_loop" in kinds
        text = _cli(*base[:-2], "--target-otp", "27")
        assert "restarts it on a new emulator" in text.stdout
        same = json.loads(_cli(*base, "--target-otp", "25").stdout)
        assert same["live"]["restart"] is False
        (pid,) = n.procs
        assert _fates(same) == {pid: "killed"}
        assert "live_restart" not in [f["kind"] for f in same["findings"]]


def test_drift_and_old_code_are_reported():
    with Node("local_loop_killed") as n:
        assert n.command("load_again") == {"ok": True}
        r = _cli("diff", n.v1, n.v2, "--node", n.node, "--cookie", n.cookie,
                 "--format", "json")
        doc = json.loads(r.stdout)
        assert doc["live"]["old_code"] == [n.module]
        assert "live_old_code" in [f["kind"] for f in doc["findings"]]
        assert r.returncode == 1
    with Node("local_loop_killed") as n:
        assert n.command("patch") == {"ok": True}
        r = _cli("diff", n.v1, n.v2, "--node", n.node, "--cookie", n.cookie,
                 "--format", "json")
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, DIFF_SCHEMA)
        import beaminspect
        assert doc["live"]["drift"] == [{"module": n.module,
                                         "loaded_md5": beaminspect.load(n.v2).md5.hex(),
                                         "old_md5": beaminspect.load(n.v1).md5.hex()}]
        assert r.returncode == 1


# -- faults ----------------------------------------------------------------------------

def _one_error_line(r, node: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"node {node}" in lines[0], r.stderr
    return lines[0]


def test_a_node_that_is_not_running():
    node = f"bi_nobody_{os.urandom(3).hex()}@{HOST}"
    line = _one_error_line(_cli("live", node, "--cookie", "x"), node)
    assert "no such node" in line or "epmd" in line


def test_a_wrong_cookie_and_the_cookie_never_shows():
    with Node("local_loop_killed") as n:
        wrong = "wrong" + os.urandom(6).hex()
        r = _cli("diff", n.v1, n.v2, "--node", n.node, "--cookie", wrong)
        line = _one_error_line(r, n.node)
        assert "refused" in line and wrong not in r.stderr + r.stdout
        # from the environment too
        env = dict(os.environ, BEAMINSPECT_COOKIE=wrong)
        r = _cli("live", n.node, env=env)
        assert wrong not in r.stderr + r.stdout and r.returncode == 2


def test_a_host_that_does_not_resolve():
    node = "someone@no-such-host.invalid"
    line = _one_error_line(_cli("live", node, "--cookie", "x", "--timeout", "5"), node)
    assert "does not resolve" in line


def test_a_name_that_is_not_a_node_name():
    _one_error_line(_cli("live", "no_host_part", "--cookie", "x"), "no_host_part")


def _fake_erl(tmp_path, body: str) -> dict:
    script = tmp_path / "erl"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return dict(os.environ, BEAMINSPECT_ERL=str(script))


def test_a_client_that_does_not_answer_in_time(tmp_path):
    env = _fake_erl(tmp_path, "exec sleep 60")
    line = _one_error_line(_cli("live", f"x@{HOST}", "--timeout", "0.5", env=env), f"x@{HOST}")
    assert "did not answer in time" in line


def test_a_lost_connection_is_no_partial_report(tmp_path):
    import base64
    from etf_encode import encode
    from beaminspect.terms import Atom
    answer = base64.b64encode(encode((Atom("error"), Atom("lost")))).decode()
    env = _fake_erl(tmp_path, f"echo 'beaminspect-snapshot:{answer}'")
    v1, v2 = _beams("local_loop_killed")
    r = _cli("diff", v1, v2, "--node", f"x@{HOST}", env=env)
    line = _one_error_line(r, f"x@{HOST}")
    assert "connection was lost" in line


def test_a_release_outside_the_model(tmp_path):
    import base64
    from etf_encode import encode
    from beaminspect.terms import Atom
    term = (Atom("ok"), b"24", b"12.3", [], [], Atom("true"))
    answer = base64.b64encode(encode(term)).decode()
    env = _fake_erl(tmp_path, f"echo 'beaminspect-snapshot:{answer}'")
    line = _one_error_line(_cli("live", f"x@{HOST}", env=env), f"x@{HOST}")
    assert re.search(r"OTP 24; the hot-load model covers OTP 25 to 29", line)
