"""Ask a running node what it runs, through OTP's own distribution.

The client is OTP's ``erl``, started as a hidden node with the target's cookie; it
evaluates :data:`QUERY`, which calls only BIFs and OTP functions on the target through
``erpc`` (``code:all_loaded/0``, ``erlang:get_module_info/2``,
``erlang:check_old_code/1``, ``erlang:processes/0``, ``erlang:process_info/2``,
``proc_lib:translate_initial_call/1``) and writes one line: the answer as
``term_to_binary``, in base64, which :func:`beaminspect.terms.decode` reads (nothing is
evaluated).  Nothing is loaded, purged, sent to or changed on the target.

Cost on a large node is bounded: the requests are pipelined, every one has the
time-out, and only the processes whose current stack or initial call names a module of
interest are asked for more (registered name, status).

The cookie: ``cookie=`` is written to a private ``.erlang.cookie`` (mode 0400) in a
temporary home directory that only the client sees, and removed afterwards; without it
``erl`` reads ``~/.erlang.cookie`` as usual.  It is never on a command line, in an
error or in the output.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile

from beaminspect import otp as releases
from beaminspect.errors import BeamError, NodeError
from beaminspect.live.model import LoadedModule, NodeSnapshot, ProcessInfo
from beaminspect.terms import Atom, decode

__all__ = ["snapshot", "QUERY", "DEFAULT_TIMEOUT"]

#: Seconds for the whole client run (connection, every request, the answer).
DEFAULT_TIMEOUT = 15.0
_MARK = "beaminspect-snapshot:"

#: What the client ``erl`` evaluates.  Inputs come from the environment (node name,
#: time-out, modules of interest); the answer is one marked line.
QUERY = r"""
Env = fun(K) -> os:getenv(K) end,
Target = list_to_atom(Env("BEAMINSPECT_NODE")),
TimeoutMs = list_to_integer(Env("BEAMINSPECT_TIMEOUT_MS")),
Wanted = case Env("BEAMINSPECT_MODULES") of
             "*" -> all;
             WantedText -> maps:from_list([{list_to_atom(W), true}
                                           || W <- string:lexemes(WantedText, ",")])
         end,
Reply = fun(T) ->
            io:put_chars([<<"beaminspect-snapshot:">>, base64:encode(term_to_binary(T)), $\n]),
            halt(0)
        end,
[TargetName, TargetHost] = string:split(atom_to_list(Target), "@"),
case inet:gethostbyname(TargetHost) of
    {ok, _} -> ok;
    _ -> Reply({error, unresolved})
end,
case erl_epmd:port_please(TargetName, TargetHost, TimeoutMs) of
    {port, _, _} -> ok;
    noport -> Reply({error, not_running});
    _ -> Reply({error, no_epmd})
end,
case net_kernel:connect_node(Target) of
    true -> ok;
    _ -> Reply({error, refused})
end,
Call = fun(M, F, A) -> erpc:call(Target, M, F, A, TimeoutMs) end,
Multi = fun(Reqs) ->
            Ids = [erpc:send_request(Target, M, F, A) || {M, F, A} <- Reqs],
            [try erpc:receive_response(Id, TimeoutMs)
             catch
                 error:{erpc, Why} when Why =:= noconnection; Why =:= timeout ->
                     erlang:error({erpc, Why});
                 _:_ -> undefined
             end || Id <- Ids]
        end,
Interest = fun(M) -> Wanted =:= all orelse maps:is_key(M, Wanted) end,
Frame = fun({M, F, A, _}) when is_list(A) -> {M, F, length(A)};
           ({M, F, A, _}) -> {M, F, A}
        end,
try
    Release = Call(erlang, system_info, [otp_release]),
    Version = Call(erlang, system_info, [version]),
    Loaded = Call(code, all_loaded, []),
    Names = [M || {M, _} <- Loaded],
    Md5s = Multi([{erlang, get_module_info, [M, md5]} || M <- Names]),
    Olds = Multi([{erlang, check_old_code, [M]} || M <- Names]),
    ModInfo = [{M, if is_list(File) -> unicode:characters_to_binary(File); true -> File end,
                Md5, Old}
               || {{M, File}, Md5, Old} <- lists:zip3(Loaded, Md5s, Olds)],
    Pids = Call(erlang, processes, []),
    First = Multi([{erlang, process_info, [P, [current_stacktrace, initial_call]]}
                   || P <- Pids]),
    Seen = [{P, [Frame(Fr) || Fr <- St], Ic}
            || {P, [{current_stacktrace, St}, {initial_call, Ic}]} <- lists:zip(Pids, First)],
    ProcLib = [P || {P, _, {proc_lib, init_p, 5}} <- Seen],
    Translated = maps:from_list(lists:zip(ProcLib,
                     Multi([{proc_lib, translate_initial_call, [P]} || P <- ProcLib]))),
    Picked = [{P, St, maps:get(P, Translated, Ic)}
              || {P, St, Ic} <- Seen,
                 Wanted =:= all
                 orelse lists:any(fun({M, _, _}) -> Interest(M) end, St)
                 orelse (is_tuple(maps:get(P, Translated, Ic))
                         andalso Interest(element(1, maps:get(P, Translated, Ic))))],
    More = Multi([{erlang, process_info, [P, [registered_name, status]]}
                  || {P, _, _} <- Picked]),
    Procs = [{list_to_binary(pid_to_list(P)), Reg, Ic, St, Status}
             || {{P, St, Ic}, [{registered_name, Reg}, {status, Status}]}
                    <- lists:zip(Picked, More)],
    Reply({ok, list_to_binary(Release), list_to_binary(Version), ModInfo, Procs,
           Wanted =:= all})
catch
    error:{erpc, noconnection} -> Reply({error, lost});
    error:{erpc, timeout} -> Reply({error, timeout})
end.
"""

_CAUSES = {
    "unresolved": "the host name does not resolve",
    "not_running": "no such node is running there (epmd does not know the name)",
    "no_epmd": "cannot reach epmd on the host (no Erlang node runs there, or a firewall)",
    "refused": "the node refused the connection (wrong cookie, or it does not accept "
               "this kind of node name)",
    "lost": "the connection was lost while asking",
    "timeout": "the node did not answer in time",
}

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+$")


def _long_names(node: str) -> bool:
    return "." in node.split("@", 1)[1]


def _client_name(node: str, where: str) -> list[str]:
    """``-sname``/``-name`` for the client, in the target's style (a dot in the host
    part means long names).  The target's host must resolve."""
    import socket
    tag = f"beaminspect_{os.getpid()}_{os.urandom(3).hex()}"
    host = node.split("@", 1)[1]
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise NodeError(_CAUSES["unresolved"], file=where) from None
    if not _long_names(node):
        return ["-sname", tag]
    if any(a.startswith("127.") or a == "::1" for a in addrs):
        return ["-name", f"{tag}@127.0.0.1"]
    fqdn = socket.getfqdn()
    if "." not in fqdn:
        try:
            fqdn = socket.gethostbyname(socket.gethostname())
        except OSError:
            raise NodeError("this machine has no long host name to connect with "
                            "(-name needs one)", file=where) from None
    return ["-name", f"{tag}@{fqdn}"]


def snapshot(node: str, *, cookie: str | None = None, timeout: float = DEFAULT_TIMEOUT,
             modules=None, erl: str | None = None) -> NodeSnapshot:
    """What runs on ``node`` (``name@host``): its release, every loaded module with its
    MD5 and old-code flag, and the processes executing the ``modules`` of interest
    (every process when ``modules`` is None).  Raises :class:`NodeError` with the cause
    when the node cannot be asked; never returns a partial snapshot."""
    if not _NAME.match(node or ""):
        raise NodeError("not a node name (name@host)", file=f"node {node}")
    where = f"node {node}"
    erl = erl or os.environ.get("BEAMINSPECT_ERL") or shutil.which("erl")
    if not erl:
        raise NodeError("Erlang/OTP's erl, the distribution client, is not installed",
                        file=where)
    env = dict(os.environ)
    env.update(BEAMINSPECT_NODE=node, BEAMINSPECT_TIMEOUT_MS=str(max(1, int(timeout * 1000))),
               BEAMINSPECT_MODULES="*" if modules is None else ",".join(sorted(modules)))
    # No crash dump from the client, whatever happens to it.
    env["ERL_CRASH_DUMP_SECONDS"] = "0"
    argv = [erl, "-hidden", "-noshell", "-noinput", *_client_name(node, where), "-eval", QUERY]
    home = None
    try:
        if cookie is not None:
            home = tempfile.mkdtemp(prefix="beaminspect-")
            path = os.path.join(home, ".erlang.cookie")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w") as f:
                f.write(cookie)
            env["HOME"] = home
        try:
            proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout + 5.0)
        except subprocess.TimeoutExpired:
            raise NodeError(_CAUSES["timeout"] + f" (--timeout {timeout:g} s)",
                            file=where) from None
        except OSError as e:
            raise NodeError(f"cannot start {erl}: {e.strerror}", file=where) from None
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    answer = _answer(proc, where, cookie)
    return _snapshot(node, answer, where)


def _answer(proc, where: str, cookie: str | None):
    out = proc.stdout.decode("utf-8", "replace")
    line = next((ln for ln in out.splitlines() if ln.startswith(_MARK)), None)
    if line is None:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = said[-1] if said else "no message"
        if cookie:
            last = last.replace(cookie, "***")
        if "Protocol 'inet_tcp': register/listen error" in last or "epmd" in last:
            last = "the client could not start distribution (epmd): " + last
        raise NodeError(f"the client erl gave no answer (exit {proc.returncode}): "
                        f"{last[:200]}", file=where)
    try:
        term = decode(base64.b64decode(line[len(_MARK):]), file=where)
    except (ValueError, BeamError) as e:
        raise NodeError(f"the client's answer is unreadable: {e}", file=where) from None
    if isinstance(term, tuple) and len(term) == 2 and term[0] == "error":
        raise NodeError(_CAUSES.get(str(term[1]), str(term[1])), file=where)
    if not (isinstance(term, tuple) and len(term) == 6 and term[0] == "ok"):
        raise NodeError("the client's answer has an unexpected shape", file=where)
    return term


def _text(v) -> str | None:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, Atom):
        return str(v)
    return None


def _mfa(v) -> str | None:
    if isinstance(v, tuple) and len(v) == 3 and isinstance(v[2], int):
        return f"{v[0]}:{v[1]}/{v[2]}"
    return None


def _snapshot(node: str, term, where: str) -> NodeSnapshot:
    _ok, release, version, mods, procs, complete = term
    release_text = _text(release) or "?"
    try:
        otp = int(release_text)
    except ValueError:
        otp = -1
    lo, hi = releases.OLDEST, releases.NEWEST
    if not lo <= otp <= hi:
        raise NodeError(f"the node runs OTP {release_text}; the hot-load model covers "
                        f"OTP {lo} to {hi}", file=where)
    modules = {}
    for name, file, md5, old in mods:
        modules[str(name)] = LoadedModule(
            str(name), bytes(md5).hex() if isinstance(md5, (bytes, bytearray)) else None,
            old == "true", _text(file))
    processes = []
    for pid, reg, ic, stack, status in procs:
        processes.append(ProcessInfo(
            _text(pid) or "?",
            str(reg) if isinstance(reg, Atom) and reg else None,
            _mfa(ic),
            tuple((str(m), str(f), int(a)) for m, f, a in stack),
            str(status)))
    return NodeSnapshot(node, otp, _text(version) or "?",
                        dict(sorted(modules.items())), tuple(processes),
                        complete == "true")
