"""Asking the installed Erlang/OTP (the tests' oracle).

Each helper starts one ``erl`` for a whole batch of files (a VM start costs about a
second), has it write ``term_to_binary`` of its answer to a file, and decodes that.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

HAVE_ERL = shutil.which("erl") is not None
needs_erl = pytest.mark.skipif(not HAVE_ERL, reason="Erlang/OTP (erl) is not installed; "
                               "OTP oracle tests need it (CI installs erlang-nox)")

OTP_BEAMS = sorted(glob.glob("/usr/lib/erlang/lib/*/ebin/*.beam"))
ELIXIR_BEAMS = sorted(glob.glob("/usr/lib/elixir/lib/*/ebin/*.beam"))


def _erl_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_erl(body: str, inputs: list[str], timeout: int = 600):
    """Run ``body`` in a fresh ``erl`` with ``Files`` bound to ``inputs`` and ``Out`` to an
    output path; ``body`` must write ``term_to_binary(Result)`` to ``Out``.  Returns the
    decoded result."""
    from beaminspect import terms

    with tempfile.TemporaryDirectory() as d:
        listing = os.path.join(d, "files.eterm")
        out = os.path.join(d, "out.bin")
        with open(listing, "w", encoding="utf-8") as f:
            f.write("[" + ",\n".join(_erl_string(p) for p in inputs) + "].\n")
        expr = (f"{{ok, [Files]}} = file:consult({_erl_string(listing)}), "
                f"Out = {_erl_string(out)}, {body}, halt().")
        proc = subprocess.run(["erl", "-noshell", "-noinput", "-eval", expr],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"erl failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
        with open(out, "rb") as f:
            return terms.decode(f.read(), max_size=1 << 30)


BEAM_LIB_INFO = r"""
Get = fun(F, What) ->
          case beam_lib:chunks(F, [What]) of
              {ok, {_, [{_, V}]}} -> V;
              {error, beam_lib, R} -> {error, R}
          end
      end,
Lits = fun(F) ->
          case beam_lib:chunks(F, ["LitT"]) of
              {ok, {_, [{_, <<0:32, T/binary>>}]}} -> T1 = T, ok;
              {ok, {_, [{_, <<_:32, Z/binary>>}]}} -> T1 = zlib:uncompress(Z), ok;
              _ -> T1 = none
          end,
          case T1 of
              none -> [];
              <<N:32, Rest/binary>> ->
                  (fun Loop(0, _, Acc) -> lists:reverse(Acc);
                       Loop(K, <<S:32, B:S/binary, R/binary>>, Acc) ->
                           Loop(K - 1, R, [binary_to_term(B) | Acc])
                   end)(N, Rest, [])
          end
       end,
R = [begin
        {ok, {M, MD5}} = beam_lib:md5(F),
        {F, M, MD5,
         Get(F, atoms), Get(F, exports), Get(F, imports), Get(F, labeled_locals),
         Get(F, labeled_exports), Get(F, attributes), Get(F, compile_info), Lits(F)}
     end || F <- Files],
ok = file:write_file(Out, term_to_binary(R))
"""


@functools.lru_cache(maxsize=8)
def beam_lib_info(files: tuple[str, ...]) -> dict:
    """For each file: what beam_lib says (module, md5, atoms, exports, ...)."""
    result = run_erl(BEAM_LIB_INFO, list(files))
    keys = ("module", "md5", "atoms", "exports", "imports", "labeled_locals", "labeled_exports",
            "attributes", "compile_info", "literals")
    out = {}
    for row in result:
        path = "".join(map(chr, row[0])) if isinstance(row[0], list) else row[0]
        out[path] = dict(zip(keys, row[1:]))
    return out


# ---------------------------------------------------------------------------------------
# Several releases: the host's OTP 25 and newer ones in Debian roots (tools/otp-roots.sh,
# `make oracles`).  Each VM runs under an address-space limit and a kill timeout (some
# mutated files make a real loader crash or spin), and answers through a file.
#
#   rel = otp(27)                      # or require_otp(27): skips when absent
#   rel.available, rel.skip_reason
#   rel.lib_dir, rel.elixir_lib        # host paths of the release's beams
#   rel.eval("lists:seq(1, 3)")        # -> [1, 2, 3]
#   rel.run_erl(body, files)           # like run_erl above, in that release
#   rel.run_escript(script, *args)     # -> CompletedProcess
#
# Files outside a root are copied into a scratch directory under ROOT/tmp for the run
# and removed after it; files inside the root are passed by their path in the root.
# Answers are decoded by decode_etf below (not beaminspect's decoder: these helpers are
# an oracle independent of the code under test).

import resource
import signal
import struct
import zlib
from dataclasses import dataclass, field

ROOTS_DIR = os.environ.get("BEAMINSPECT_ROOTS", "/var/cache/beaminspect/roots")
ROOT_STAMP = ".beaminspect-root"
VM_MEMORY_LIMIT = 4 << 30   # address space (erts reserves 1 GB for literals up front)
VM_TIMEOUT = 600
_ROOT_SUITES = {27: "Debian 13 trixie", 29: "Debian unstable sid"}
# No crash dumps (a VM killed by its limits would leave one in its working directory).
_VM_ENV = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "ERL_CRASH_DUMP_SECONDS": "0"}


class Atom(str):
    """An Erlang atom in a decoded answer (a str, so it compares with names)."""

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


def decode_etf(data: bytes):
    """Decode ``term_to_binary`` output: numbers, atoms, tuples, lists (charlists stay
    lists of ints), binaries (bytes), bitstrings ((bytes, bits in last byte)), maps."""
    if not data or data[0] != 131:
        raise ValueError("not external term format")
    if data[1] == 80:  # compressed
        (size,) = struct.unpack_from(">I", data, 2)
        data = b"\x83" + zlib.decompress(data[6:])
        if len(data) != size + 1:
            raise ValueError("bad compressed term size")
    value, pos = _etf(data, 1)
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after term")
    return value


def _etf(b: bytes, i: int):
    tag = b[i]
    i += 1
    if tag == 97:
        return b[i], i + 1
    if tag == 98:
        return struct.unpack_from(">i", b, i)[0], i + 4
    if tag == 70:
        return struct.unpack_from(">d", b, i)[0], i + 8
    if tag in (110, 111):
        if tag == 110:
            n, sign = b[i], b[i + 1]
            i += 2
        else:
            n, sign = struct.unpack_from(">IB", b, i)
            i += 5
        v = int.from_bytes(b[i:i + n], "little")
        return (-v if sign else v), i + n
    if tag in (100, 118):
        (n,) = struct.unpack_from(">H", b, i)
        i += 2
        return Atom(b[i:i + n].decode("latin-1" if tag == 100 else "utf-8")), i + n
    if tag in (115, 119):
        n = b[i]
        i += 1
        return Atom(b[i:i + n].decode("latin-1" if tag == 115 else "utf-8")), i + n
    if tag in (104, 105):
        if tag == 104:
            n, i = b[i], i + 1
        else:
            (n,) = struct.unpack_from(">I", b, i)
            i += 4
        items = []
        for _ in range(n):
            v, i = _etf(b, i)
            items.append(v)
        return tuple(items), i
    if tag == 106:
        return [], i
    if tag == 107:
        (n,) = struct.unpack_from(">H", b, i)
        return list(b[i + 2:i + 2 + n]), i + 2 + n
    if tag == 108:
        (n,) = struct.unpack_from(">I", b, i)
        i += 4
        items = []
        for _ in range(n):
            v, i = _etf(b, i)
            items.append(v)
        tail, i = _etf(b, i)
        if tail != []:
            raise ValueError("improper list in answer")
        return items, i
    if tag == 109:
        (n,) = struct.unpack_from(">I", b, i)
        return bytes(b[i + 4:i + 4 + n]), i + 4 + n
    if tag == 77:
        (n,) = struct.unpack_from(">I", b, i)
        bits = b[i + 4]
        return (bytes(b[i + 5:i + 5 + n]), bits), i + 5 + n
    if tag == 116:
        (n,) = struct.unpack_from(">I", b, i)
        i += 4
        out = {}
        for _ in range(n):
            k, i = _etf(b, i)
            v, i = _etf(b, i)
            out[k] = v
        return out, i
    raise ValueError(f"term tag {tag} not handled in test answers")


def erl_string(s: str) -> str:
    """An Erlang string literal for ``s``."""
    return _erl_string(s)


def _host_erlang_root() -> str | None:
    erl = shutil.which("erl")
    if erl is None:
        return None
    bindir = os.path.dirname(os.path.realpath(erl))   # /usr/lib/erlang/bin
    return os.path.dirname(bindir)


@dataclass
class Release:
    """One Erlang/OTP release the tests can run: the host's, or one in a Debian root."""

    otp_release: str                 # "25", "27", "29"
    root: str                        # "/" for the host
    available: bool
    skip_reason: str = ""
    erlang_root: str = ""            # host path of the release's erlang dir
    info: dict = field(default_factory=dict)   # the root's stamp (suite, otp_version, ...)

    @property
    def on_host(self) -> bool:
        return self.root == "/"

    @property
    def lib_dir(self) -> str:
        return os.path.join(self.erlang_root, "lib")

    @property
    def elixir_lib(self) -> str:
        return os.path.join(self.root, "usr/lib/elixir/lib")

    @property
    def code_path(self) -> list[str]:
        """The release's OTP lib directory, then its Elixir's."""
        return [self.lib_dir, self.elixir_lib]

    @property
    def otp_version(self) -> str:
        """Full version from releases/NN/OTP_VERSION, e.g. "27.3.4.1"."""
        try:
            with open(os.path.join(self.erlang_root, "releases", self.otp_release,
                                   "OTP_VERSION")) as f:
                return f.read().strip()
        except OSError:
            return self.otp_release

    def otp_beams(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.lib_dir, "*/ebin/*.beam")))

    def elixir_beams(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.elixir_lib, "*/ebin/*.beam")))

    def skip_unless_available(self) -> "Release":
        if not self.available:
            pytest.skip(self.skip_reason)
        return self

    # -- running ------------------------------------------------------------------------
    def vm_path(self, host_path: str) -> str | None:
        """The path the release's VM sees for ``host_path``, or None when it is outside."""
        p = os.path.realpath(host_path)
        if self.on_host:
            return p
        root = os.path.realpath(self.root)
        if p.startswith(root + os.sep):
            return p[len(root):]
        return None

    def _command(self, argv: list[str]) -> list[str]:
        if self.on_host:
            return ["env", "-u", "ERL_FLAGS", "-u", "ERL_AFLAGS", "-u", "ERL_ZFLAGS",
                    "-u", "ERL_COMPILER_OPTIONS", "ERL_CRASH_DUMP_SECONDS=0", *argv]
        # A private mount namespace: proc is mounted for this VM only and goes with it.
        inner = ["chroot", self.root, "/usr/bin/env", "-i",
                 *(f"{k}={v}" for k, v in _VM_ENV.items()), *argv]
        if _have_unshare():
            return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t proc proc "$0/proc" 2>/dev/null; exec "$@"', self.root, *inner]
        return inner

    def command(self, argv: list[str]) -> list[str]:
        """The host command line that runs ``argv`` (paths as the VM sees them) in the
        release, for callers that talk to the process themselves (no limits applied)."""
        if not self.available:
            raise RuntimeError(self.skip_reason)
        return self._command(argv)

    def run(self, argv: list[str], timeout: float = VM_TIMEOUT,
            memory: int = VM_MEMORY_LIMIT) -> subprocess.CompletedProcess:
        """Run ``argv`` (paths as the VM sees them) in the release, under the limits;
        on timeout the whole process group is killed and TimeoutExpired raised."""
        if not self.available:
            raise RuntimeError(self.skip_reason)

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        proc = subprocess.Popen(self._command(argv), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                preexec_fn=limits, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(argv, proc.returncode,
                                           out.decode("utf-8", "replace"),
                                           err.decode("utf-8", "replace"))

    def scratch(self) -> "_Scratch":
        """A temporary directory the VM can read and write (under ROOT/tmp for a root)."""
        return _Scratch(self)

    def run_erl(self, body: str, inputs: list[str] = (), timeout: float = VM_TIMEOUT,
                decoder=None):
        """Run ``body`` with ``Files`` bound to the VM's paths of ``inputs`` (in order) and
        ``Out`` to an output path; ``body`` writes ``term_to_binary(Result)`` to ``Out``.
        Returns the Result decoded by ``decoder`` (default: decode_etf, which reads the
        plain terms test answers use)."""
        with self.scratch() as s:
            files = [s.stage(p) for p in inputs]
            listing = s.write("files.eterm",
                              "[" + ",\n".join(_erl_string(p) for p in files) + "].\n")
            out = s.vm("out.bin")
            expr = (f"{{ok, [Files]}} = file:consult({_erl_string(listing)}), "
                    f"Out = {_erl_string(out)}, {body}, halt().")
            proc = self.run(["erl", "-noshell", "-noinput", "-eval", expr], timeout=timeout)
            host_out = s.host("out.bin")
            if proc.returncode != 0 or not os.path.exists(host_out):
                raise RuntimeError(f"OTP {self.otp_release} erl failed ({proc.returncode}): "
                                   f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            with open(host_out, "rb") as f:
                return (decoder or decode_etf)(f.read())

    def eval(self, expr: str, timeout: float = VM_TIMEOUT):
        """The value of one Erlang expression in this release."""
        return self.run_erl(f"ok = file:write_file(Out, term_to_binary(begin {expr} end))",
                            [], timeout=timeout)

    def run_escript(self, script: str, *args: str,
                    timeout: float = VM_TIMEOUT) -> subprocess.CompletedProcess:
        """Run an escript; ``script`` and every argument naming an existing host file or
        directory are staged into the VM's view first, other arguments pass as they are."""
        with self.scratch() as s:
            vm_args = [s.stage(a) if os.path.exists(a) else a for a in args]
            return self.run(["escript", s.stage(script), *vm_args], timeout=timeout)


class _Scratch:
    def __init__(self, release: Release):
        self.release = release
        base = None if release.on_host else os.path.join(release.root, "tmp")
        self._tmp = tempfile.TemporaryDirectory(prefix="beaminspect-", dir=base)
        self.dir = self._tmp.name
        self._n = 0

    def __enter__(self) -> "_Scratch":
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    def host(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def vm(self, name: str) -> str:
        return self.release.vm_path(self.host(name))

    def write(self, name: str, text: str) -> str:
        with open(self.host(name), "w", encoding="utf-8") as f:
            f.write(text)
        return self.vm(name)

    def stage(self, host_path: str) -> str:
        """The VM's path for ``host_path``, copying it in when the VM cannot see it."""
        inside = self.release.vm_path(host_path)
        if inside is not None:
            return inside
        self._n += 1
        dest = os.path.join(self.dir, "in", str(self._n), os.path.basename(host_path))
        os.makedirs(os.path.dirname(dest))
        if os.path.isdir(host_path):
            shutil.copytree(host_path, dest)
        else:
            shutil.copyfile(host_path, dest)
        return self.release.vm_path(dest)


@functools.lru_cache(maxsize=1)
def _have_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=None)
def otp(release: int | str) -> Release:
    """The release ``release`` (25, 27, 29): the host's when its erl is that release,
    otherwise the Debian root built by tools/otp-roots.sh, if any."""
    rel = str(release)
    host = _host_erlang_root()
    if host is not None and os.path.isdir(os.path.join(host, "releases", rel)):
        return Release(rel, "/", True, erlang_root=host)
    root = os.path.join(ROOTS_DIR, f"otp{rel}")
    erlang_root = os.path.join(root, "usr/lib/erlang")
    hint = "run make oracles (needs root, debootstrap and the Debian archive)"
    if int(rel) not in _ROOT_SUITES:
        return Release(rel, root, False, f"OTP {rel} is not installed here and no root "
                       f"is built for it (known: 25 on the host, 27, 29)", erlang_root)
    if not os.path.isfile(os.path.join(root, ROOT_STAMP)):
        return Release(rel, root, False, f"OTP {rel} root not built: {hint}", erlang_root)
    info = {}
    with open(os.path.join(root, ROOT_STAMP), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            info[k] = v
    if not os.path.isdir(os.path.join(erlang_root, "releases", rel)):
        return Release(rel, root, False, f"{root} holds OTP {info.get('otp', '?')}, "
                       f"not {rel}: rebuild it ({hint})", erlang_root, info)
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        return Release(rel, root, False, f"OTP {rel} root exists but running it needs "
                       "chroot as root", erlang_root, info)
    return Release(rel, root, True, "", erlang_root, info)


def require_otp(release: int | str) -> Release:
    """``otp(release)``, or skip the calling test with the reason it is missing."""
    return otp(release).skip_unless_available()
