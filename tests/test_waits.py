"""Which calls block, read from the code they reach (beaminspect.analysis.waits), on
the OTP and Elixir code of every release tests/otp.py has: OTP 25 with Elixir 1.14 on
the host, OTP 27 with Elixir 1.18 and OTP 29 with Elixir 1.20 in their roots.

That a process blocked in such a call is killed by the purge, and one that only printed,
logged or read a file is not, is checked in the VM by the pair blocked_derived
(tests/test_hotload_vm.py)."""

import functools
import glob
import os
import sys

import pytest

from beaminspect.analysis.waits import (BLOCKING_CALLS, HIDDEN_WAITS, PROMPT_MODULES,
                                        WaitIndex, summarise, table_waits)
from beaminspect.analysis import waitdata
from otp import require_otp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))

RELEASES = (25, 27, 29)

#: Calls that block: each reaches a receive bounded by the caller's timeout or a timer.
WAITS = [
    ("gen_server", "call", 2), ("gen_server", "call", 3), ("gen_statem", "call", 2),
    ("timer", "sleep", 1), ("sys", "get_state", 1), ("sys", "get_state", 2),
    ("gen_server", "start", 3), ("gen_server", "start_link", 4),
    ("supervisor", "start_child", 2), ("application", "start", 1), ("rpc", "call", 4),
    ("erpc", "call", 4), ("io", "get_line", 1), ("gen_tcp", "recv", 2),
    ("Elixir.Process", "sleep", 1), ("Elixir.GenServer", "call", 3),
    ("Elixir.Task", "await", 2), ("Elixir.Task", "await_many", 2),
    ("Elixir.Agent", "get", 3), ("Elixir.Agent", "start_link", 1), ("Elixir.IO", "gets", 1),
    ("Elixir.DynamicSupervisor", "start_child", 2),
]
#: Calls that do not: pure code, sends, and requests to the runtime's own servers
#: (output, logging, the file server, the timer server), and code whose only wait is
#: on a raising path (Enum.map/2 and Kernel.inspect/2 build exceptions that may warn).
PROMPT = [
    ("io", "format", 2), ("io", "format", 3), ("lists", "map", 2), ("maps", "get", 2),
    ("ets", "insert", 2), ("erlang", "send", 2), ("gen_server", "cast", 2),
    ("gen_server", "reply", 2), ("logger", "info", 1), ("logger", "log", 3),
    ("file", "read_file", 1), ("file", "read_file_info", 1), ("timer", "send_after", 3),
    ("proc_lib", "spawn_link", 3), ("application", "get_env", 2),
    ("Elixir.IO", "puts", 1), ("Elixir.IO", "inspect", 2), ("Elixir.Enum", "map", 2),
    ("Elixir.Kernel", "inspect", 2), ("Elixir.String", "split", 2),
    ("Elixir.File", "read", 1), ("Elixir.Application", "get_env", 2),
    ("Elixir.Task", "start_link", 1), ("Elixir.GenServer", "cast", 2),
    ("Elixir.Process", "send_after", 3),
]


@functools.lru_cache(maxsize=None)
def index(release: int, precomputed: bool = True) -> WaitIndex:
    """The release's OTP and Elixir code; ``precomputed=False`` reads every module
    instead of looking answers up in beaminspect/analysis/waitdata."""
    rel = require_otp(release)
    if not os.path.isdir(rel.elixir_lib):
        pytest.skip(f"OTP {release} has no Elixir at {rel.elixir_lib}")
    return WaitIndex.from_code_path(rel.code_path, precomputed=precomputed)


HOW = pytest.mark.parametrize("precomputed", (False, True), ids=("read", "looked-up"))


def _ends_in_a_wait(idx: WaitIndex, mfa) -> bool:
    """The last function of why() receives with a timeout that is not a literal (or
    sets a timer and receives), or is a wait the code does not show."""
    chain = idx.why(mfa)
    last = chain[-1]
    if last in HIDDEN_WAITS:
        return True
    s = idx._summary(last[0])
    if s.settled is None:
        return (last[1], last[2]) in s.waits
    return idx._known[last] is True      # the recorded way ends in this module


@HOW
@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
@pytest.mark.parametrize("mfa", WAITS, ids=lambda m: f"{m[0]}:{m[1]}/{m[2]}")
def test_blocking_calls_are_found_in_the_code(release, mfa, precomputed):
    idx = index(release, precomputed)
    assert idx._summary(mfa[0]) is not None, "the code is at hand"
    assert idx(mfa), mfa
    chain = idx.why(mfa)
    assert chain[0] == mfa and _ends_in_a_wait(idx, mfa), chain


@HOW
@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
@pytest.mark.parametrize("mfa", PROMPT, ids=lambda m: f"{m[0]}:{m[1]}/{m[2]}")
def test_prompt_calls_do_not_block(release, mfa, precomputed):
    idx = index(release, precomputed)
    assert not idx(mfa), idx.why(mfa)
    assert idx.why(mfa) == ()


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
def test_the_fallback_table_follows_from_the_code(release):
    """Every entry of the table for code not at hand blocks by the code of each release
    (the table says nothing the code would not)."""
    idx = index(release, False)
    present = [m for m in sorted(BLOCKING_CALLS) if idx._summary(m[0]) is not None
               and (m[1], m[2]) in idx._summary(m[0]).calls]
    assert len(present) >= len(BLOCKING_CALLS) - 4
    assert [m for m in present if not idx(m)] == []


def test_code_not_at_hand_falls_back_to_the_table():
    idx = WaitIndex(lambda name: None)
    for mfa in WAITS + PROMPT:
        assert idx(mfa) == table_waits(mfa) == (mfa in BLOCKING_CALLS)
    assert WaitIndex()(("gen_server", "call", 3))


def test_unreadable_code_counts_as_not_at_hand(tmp_path):
    (tmp_path / "gen_server.beam").write_bytes(b"FOR1\x00\x00\x00\x04BEAMjunk")
    (tmp_path / "hl_mine.beam").write_bytes(b"not a beam")
    idx = WaitIndex.from_code_path([str(tmp_path)])
    assert idx(("gen_server", "call", 3))          # the table's answer
    assert not idx(("hl_mine", "f", 0))


def test_prompt_modules_are_not_followed():
    idx = WaitIndex(lambda name: None)
    for m in PROMPT_MODULES:
        assert not idx((m, "anything", 1))


def test_summary_of_a_sample():
    """summarise() on a committed sample: the waiting functions and the calls made on
    paths that return (none of them is erlang:error/1)."""
    import beaminspect
    from vm.observe import pair_beams
    m = beaminspect.load(pair_beams("blocked_derived")[0])
    s = summarise(m)
    assert s.waits == frozenset()        # its waits are in the code it calls
    assert ("sys", "get_state", 2) in s.calls[("peek", 1)]
    assert ("gen_server", "start", 3) in s.calls[("starter", 0)]
    assert all(c[:2] != ("erlang", "error") for cs in s.calls.values() for c in cs)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
def test_the_index_reads_only_what_a_question_needs(release):
    rel = require_otp(release)
    read = []

    def find(name):
        read.append(name)
        return base._find(name)
    base = WaitIndex.from_code_path([rel.lib_dir])
    idx = WaitIndex(find, precomputed=False)
    assert idx(("lists", "map", 2)) is False
    assert read == ["lists"]
    assert idx(("gen_server", "call", 3))
    n = len(read)
    assert idx(("gen_server", "call", 2)) and len(read) == n, "answers are remembered"
    assert len(set(read)) == len(read), "each module is read once"


# --- the data files (beaminspect/analysis/waitdata) --------------------------------


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
def test_data_file_is_what_the_release_code_gives(release):
    """Staleness: tools/gen_waits.py run now on the release's code writes the committed
    file, byte for byte (it records the OTP and Elixir versions it was made from)."""
    import gen_waits
    rel = require_otp(release)
    committed = waitdata.load(release)
    if committed["otp_version"] != rel.otp_version:
        pytest.skip(f"the file was made from OTP {committed['otp_version']}, "
                    f"this machine has {rel.otp_version}")
    path = os.path.join(os.path.dirname(waitdata.__file__), f"otp{release}.json")
    with open(path, encoding="utf-8") as f:
        assert f.read() == gen_waits.dumps(gen_waits.generate(rel)), \
            f"stale: run python tools/gen_waits.py --otp {release}"


def test_data_files_cover_the_measured_releases():
    assert waitdata.releases() == list(RELEASES)
    for r in RELEASES:
        d = waitdata.load(r)
        assert d["format"] == waitdata.FORMAT and d["otp_release"] == str(r)
        assert len(d["modules"]) > 1000 and d["elixir_version"]


def test_a_listed_module_needs_no_reading(tmp_path):
    """A module whose MD5 is listed is answered from the data file: its functions are
    never disassembled."""
    import beaminspect
    gs = next(p for p in glob.glob("/usr/lib/erlang/lib/stdlib-*/ebin/gen_server.beam"))
    m = beaminspect.load(gs)
    if waitdata.settled("gen_server", m.md5) is None:
        pytest.skip("this OTP's gen_server is not in a data file")
    loaded = []

    def find(name):
        mod = beaminspect.load(gs) if name == "gen_server" else None
        loaded.append(mod)
        return mod
    idx = WaitIndex(find)
    assert idx(("gen_server", "call", 3)) and not idx(("gen_server", "cast", 2))
    assert all("functions" not in vars(x) for x in loaded if x is not None)
    assert idx.why(("gen_server", "call", 3))[1] == ("gen", "call", 4)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: f"otp{r}")
def test_read_and_looked_up_answers_agree(release):
    """Every exported function of a sample of modules gets the same answer and the same
    chain whether its modules are read or looked up, in any order of questions."""
    read = index(release, False)
    looked = WaitIndex.from_code_path(require_otp(release).code_path)
    questions = WAITS + PROMPT + sorted(BLOCKING_CALLS)
    for mfa in reversed(questions):
        looked(mfa)
    for mfa in questions:
        assert read.why(mfa) == looked.why(mfa), mfa
