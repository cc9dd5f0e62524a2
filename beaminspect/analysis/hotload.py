"""What a hot load and the purge after it will do, predicted from the two files.

The model (checked against the running VM by the test suite; see the README):

* ``code:load_file/1`` makes the new version current and the running one old; the
  purge then kills every process whose program counter, return addresses or catch
  frames still point into the old instance.
* A process moves to new code only on an external call (``M:F(...)``).  A receive loop
  closed by local calls therefore never leaves the old code: the purge kills it.  A loop
  that re-enters through ``?MODULE:loop(...)`` moves on its next message; one that got
  no message between the load and the purge is still in the old code and is killed.
* A process blocked in a non-tail call made from old code (a receive in a callee,
  ``gen_server:call``, ``timer:sleep``...) has a return address into the old code.
  Which external calls block is found in the code they call when it is at hand
  (:mod:`beaminspect.analysis.waits`).
* Funs created by the old instance raise ``badfun`` once it is purged, unless the new
  file has the same MD5.  ``fun M:F/A`` always runs the current code.
"""

from __future__ import annotations

from dataclasses import dataclass

from beaminspect.analysis.elixir import elixir_facts, otp_behaviours, struct_changes
from beaminspect.analysis.supervisor import child_ids, init_reach
from beaminspect.analysis.waits import table_waits
from beaminspect.analysis.funs import CLASSES as FUN_CLASSES, classify_funs, spawned_functions
from beaminspect.analysis.state import STATE_ARGS, state_tags
from beaminspect.analysis.diff import ModuleDiff, diff_modules, hand_set_vsn
from beaminspect.code.disasm import ExtFunc, LocalFunc
from beaminspect.errors import BeamError
from beaminspect.terms.source import dump_term as source_text
from beaminspect.module import BeamModule
from beaminspect.format.opcodes import MAX_OPCODE_BY_RELEASE
from beaminspect.analysis.findings import Finding, effective_severity, exceeds, worst

__all__ = ["HotLoadReport", "analyse", "record_shapes", "state_changed", "StateShapes",
           "state_shape_changes", "GEN_BEHAVIOURS",
           "GEN_CALLBACKS", "max_severity_at_least"]

RECEIVE_OPS = frozenset({"loop_rec", "wait", "wait_timeout"})
LOCAL_CALLS = frozenset({"call", "call_last", "call_only"})
EXT_CALLS = frozenset({"call_ext", "call_ext_last", "call_ext_only"})



@dataclass(frozen=True)
class HotLoadReport:
    """A module diff and the findings predicted for loading ``new`` over ``old``."""

    diff: ModuleDiff
    findings: tuple[Finding, ...]
    # Functions where the purge kills processes (for testing against the VM):
    local_loops: frozenset[str]
    external_loops: frozenset[str]
    blocking_calls: frozenset[str]
    mixed_loops: frozenset[str] = frozenset()
    #: What happens to each fun the old code creates (:mod:`beaminspect.analysis.funs`).
    fun_uses: tuple = ()
    #: ``(state_shape_changes(...),)`` when the analysis asked (a gen_* module whose
    #: code changed), else ``()``: kept for :func:`state_changed`.
    state_shapes: tuple = ()

    def worst(self) -> str | None:
        return worst(self.findings)

    def failed(self, threshold: str) -> bool:
        """Does a finding reach ``threshold`` (info, warning, error or never)?"""
        return exceeds(self.findings, threshold)


# ---------------------------------------------------------------------------
# Call-graph facts of one version
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Facts:
    receives: frozenset[str]
    local_edges: dict            # mfa -> set of local callee mfas (any call kind)
    self_ext_edges: dict         # mfa -> set of own-module external callee mfas
    nontail_blocking: dict       # mfa -> list of what it blocks in (display)
    hibernates: frozenset[str]


def _facts(m: BeamModule, waits) -> _Facts:
    receives, hib = set(), set()
    local_edges: dict[str, set] = {}
    ext_edges: dict[str, set] = {}
    nontail_local: dict[str, set] = {}
    nontail_ext: dict[str, list] = {}
    for fn in m.functions:
        mfa = fn.mfa
        le, ee, nl, ne = set(), set(), set(), []
        for ins in fn.instructions:
            name = ins.name
            if name in RECEIVE_OPS:
                receives.add(mfa)
            elif name in LOCAL_CALLS:
                for v in ins.values:
                    if type(v) is LocalFunc:
                        le.add(f"{v.name}/{v.arity}")
                        if name == "call":
                            nl.add(f"{v.name}/{v.arity}")
            elif name in EXT_CALLS:
                for v in ins.values:
                    if type(v) is ExtFunc:
                        if v.module == m.name:
                            ee.add(f"{v.function}/{v.arity}")
                        if (v.module, v.function) in (("erlang", "hibernate"),
                                                      ("proc_lib", "hibernate")):
                            hib.add(mfa)
                        if name == "call_ext" and waits((v.module, v.function, v.arity)):
                            ne.append(_wait_text(v, waits))
        local_edges[mfa] = le
        ext_edges[mfa] = ee
        nontail_local[mfa] = nl
        nontail_ext[mfa] = ne
    # A function blocks when it receives, or calls (in any position) something that blocks.
    blocks = set(receives) | {f for f, ne in nontail_ext.items() if ne}
    changed = True
    while changed:
        changed = False
        for f, callees in local_edges.items():
            if f not in blocks and callees & blocks:
                blocks.add(f)
                changed = True
    nontail_blocking: dict[str, list] = {}
    for f in local_edges:
        what = list(nontail_ext[f]) + sorted(c for c in nontail_local[f] if c in blocks)
        if what:
            nontail_blocking[f] = what
    return _Facts(frozenset(receives), local_edges, ext_edges, nontail_blocking, frozenset(hib))


def _wait_text(v: ExtFunc, waits) -> str:
    """``M:F/A``, with the function it waits in when that was found in other code."""
    text = f"{v.module}:{v.function}/{v.arity}"
    why = getattr(waits, "why", None)
    chain = why((v.module, v.function, v.arity)) if why is not None else ()
    if len(chain) > 1:
        m, f, a = chain[-1]
        text += f" (which waits in {m}:{f}/{a})"
    return text


def _reach(edges: dict, start: str) -> set:
    seen, todo = set(), [start]
    while todo:
        f = todo.pop()
        for g in edges.get(f, ()):
            if g not in seen:
                seen.add(g)
                todo.append(g)
    return seen


def _otp_release_of(m: BeamModule) -> int | None:
    """The OTP release whose compiler built the file (from CInf's compiler version)."""
    v = m.compiler_version
    if not v:
        return None
    try:
        parts = tuple(int(x) for x in v.split(".")[:2])
    except ValueError:
        return None
    table = [((9, 0), 28), ((8, 5), 27), ((8, 3), 26), ((8, 2), 25), ((8, 0), 24), ((7, 6), 23),
             ((7, 4), 22), ((7, 2), 21), ((7, 1), 20)]
    for ver, rel in table:
        if parts >= ver:
            return rel
    return None


#: Behaviours whose processes keep a state that code_change converts.
GEN_BEHAVIOURS = frozenset({"gen_server", "gen_statem", "gen_event"})
#: Callbacks whose change may mean a change of state (when records cannot be compared).
GEN_CALLBACKS = frozenset({"init/1", "handle_call/3", "handle_cast/2", "handle_info/2",
                           "handle_event/4", "handle_event/2", "callback_mode/0"})


def record_shapes(m: BeamModule) -> dict | None:
    """Record shapes (field names in order) from the debug info, or None without it."""
    try:
        forms = m.abstract_code
    except BeamError:  # unreadable debug info means "no record facts"
        return None
    if forms is None:
        return None
    out = {}
    for f in forms:
        if isinstance(f, tuple) and len(f) == 4 and f[0] == "attribute" and f[2] == "record":
            rec = f[3]
            if isinstance(rec, tuple) and len(rec) == 2 and isinstance(rec[1], list):
                out[str(rec[0])] = tuple(_field_name(x) for x in rec[1])
    return out


@dataclass(frozen=True)
class StateShapes:
    """Records (``#name``) and structs (``%Name{}``) that changed between two versions of
    a behaviour module, split by whether its processes keep them in their state (see
    :mod:`beaminspect.analysis.state`); ``why`` says how the state was found."""

    in_state: tuple[str, ...]
    elsewhere: tuple[str, ...]
    why: str


def state_shape_changes(old: BeamModule, new: BeamModule, behaviours) -> StateShapes | None:
    """The changed records and structs of a gen_* module, in its state or elsewhere; None
    when neither Erlang debug info (records) nor Elixir debug info (the struct) tells."""
    ex_old, ex_new = elixir_facts(old), elixir_facts(new)
    changed: list[tuple[str, str, object]] = []   # (display, name, size marker)
    if ex_old is not None and ex_new is not None:
        diff = struct_changes(ex_old, ex_new)
        if diff:
            short = new.name.removeprefix("Elixir.")
            changed.append((f"struct %{short}{{}} ({', '.join(diff)})", new.name, None))
    else:
        ro, rn = record_shapes(old), record_shapes(new)
        if ro is None or rn is None:
            return None
        for r in sorted(set(ro) | set(rn)):
            if ro.get(r) != rn.get(r):
                changed.append((f"record #{r}", r, "record"))
    if not changed:
        return StateShapes((), (), "")
    tags = state_tags(old, behaviours) | state_tags(new, behaviours)
    records = {t[0] for t in tags if t[1] is not None}
    structs = {t[0] for t in tags if t[1] is None}
    inside, outside = [], []
    for display, name, kind in changed:
        (inside if name in (records if kind == "record" else structs) else outside).append(
            display)
    why = "init/1 or a callback returns it as the state, or a callback reads it from there"
    return StateShapes(tuple(inside), tuple(outside), why)


def _field_name(field):
    if isinstance(field, tuple) and field and field[0] == "typed_record_field":
        field = field[1]
    if isinstance(field, tuple) and len(field) >= 3 and field[0] == "record_field":
        name = field[2]
        if isinstance(name, tuple) and len(name) == 3 and name[0] == "atom":
            return str(name[2])
    return repr(field)


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------

def analyse(old: BeamModule, new: BeamModule, *, running_otp: int | None = None,
            severities: dict | None = None, waits=None) -> HotLoadReport:
    """Diff ``old`` and ``new`` and predict what loading ``new`` over ``old`` does.

    ``running_otp``: the OTP release of the running system (default: the release whose
    compiler built ``old``).  ``severities``: overrides of the default severity per kind.
    ``waits``: answers whether an external call ``(module, function, arity)`` can block
    the caller, a :class:`~beaminspect.analysis.waits.WaitIndex` over the code the
    running system has (default: the table for code not at hand,
    :func:`~beaminspect.analysis.waits.table_waits`).
    """
    d = diff_modules(old, new)
    out: list[Finding] = []

    same_md5 = not d.reload_needed and old.name == new.name

    def add(kind, function, message, severity=None):
        if same_md5 and kind not in _ABOUT_THE_FILE:
            # The running code already is this code: the verdict is "do not load it";
            # what a load would do anyway is said, not failed on.
            severity = "info"
            message = f"if it is loaded anyway: {message}"
        s = effective_severity(kind, severity, severities)
        if s != "off":
            out.append(Finding(kind, s, function, message))

    if old.name != new.name:
        add("module_name_differs", None,
            f"the old file defines {old.name}, the new one {new.name}: "
            "load_module would load a different module")

    release = running_otp or _otp_release_of(old)
    if release is not None and release in MAX_OPCODE_BY_RELEASE:
        limit = MAX_OPCODE_BY_RELEASE[release]
        if new.code_header.max_opcode > limit:
            add("opcode_too_new", None,
                f"the new file uses opcode {new.code_header.max_opcode}, OTP {release}'s loader "
                f"knows up to {limit}: loading fails (compiled for a later release)")

    if not d.reload_needed:
        add("reload_not_needed", None,
            "the MD5 is unchanged (" + (("only " + ", ".join(d.chunks_changed) + " differ")
                                        if d.chunks_changed else "the files are identical")
            + "): the running code already is this code; do not load it")

    of = _facts(old, waits or table_waits)
    changed = d.changed_functions
    local_loops, ext_loops, blocked, mixed_loops = set(), set(), set(), set()
    waits: list[tuple[str, str]] = []   # (function, what the purge does there)

    for f in sorted(of.receives):
        reach_local = _reach(of.local_edges, f)
        if f in of.hibernates:
            continue
        # Does the loop also come back through an external call to this module?
        back = {g for g in [f] + sorted(reach_local) if of.self_ext_edges.get(g)}
        reenters = any(f in of.self_ext_edges.get(g, ()) or
                       f in _reach(of.local_edges, h)
                       for g in back for h in of.self_ext_edges.get(g, ()))
        if f in reach_local and reenters:
            local_loops.add(f)
            mixed_loops.add(f)
            add("purge_kills_local_loop", f,
                f"{f} receives in a loop closed by local calls; only the branches that "
                f"re-enter through ?MODULE:{f.split('/')[0]}(...) reach the new code: a process "
                "that takes a local branch between the load and the purge is killed")
        elif f in reach_local:
            local_loops.add(f)
            add("purge_kills_local_loop", f,
                f"{f} receives in a loop closed by local calls: processes running it never "
                "leave the old code and the purge kills them (re-enter through "
                f"?MODULE:{f.split('/')[0]}(...), or use soft_purge and restart them)")
        else:
            if reenters:
                ext_loops.add(f)
                add("purge_kills_idle_external_loop", f,
                    f"{f} re-enters through an external call: its processes move to the new "
                    "code on their next message; any that receive nothing between the load "
                    "and the purge are killed")
            else:
                blocked.add(f)
                waits.append((f, f"{f} waits in a receive: a process waiting there at the "
                                 "purge is killed"))
    for f, what in sorted(of.nontail_blocking.items()):
        if f in local_loops or f in ext_loops or f in blocked:
            continue
        blocked.add(f)
        state = "changed" if f in changed else "unchanged"
        waits.append((f, f"{f} ({state}) waits in {', '.join(what[:3])} and then returns into "
                         "old code: processes blocked there at the purge are killed"))
    gen_old = bool(otp_behaviours(old) & GEN_BEHAVIOURS)
    all_uses = classify_funs(old, behaviour=gen_old)
    if waits:
        starts = _process_starts(old, local_loops | ext_loops,
                                 spawned_functions(old, all_uses))
        callers = _callers(of.local_edges)
        for f, message in waits:
            long_running, reason = _who_waits(f, callers, starts)
            add("purge_kills_blocked_call", f,
                f"{message}; {reason}; {_soft_purge_note(f, of, callers, changed)}",
                severity="error" if long_running else "warning")

    loops = local_loops | ext_loops
    if loops and changed:
        # Changed functions reached from a loop only by local calls keep running old code.
        for loop in sorted(loops):
            for g in sorted(_reach(of.local_edges, loop) & changed):
                if g == loop:
                    continue
                if loop in local_loops:
                    add("stale_code_in_loop", g,
                        f"{g} changed but processes in {loop} reach it only by local calls: "
                        "they run the old version until the purge kills them")
                else:
                    add("stale_code_in_loop", g,
                        f"{g} changed but processes in {loop} reach it only by local calls: "
                        "they run the old version until their next message re-enters "
                        f"{loop} through an external call", severity="info")

    for e in d.exports_removed:
        name = e.rsplit("/", 1)[0]
        others = [x for x in d.exports_added if x.rsplit("/", 1)[0] == name]
        hint = f" (now {', '.join(others)})" if others else ""
        add("export_removed", e,
            f"export {old.name}:{e} is gone{hint}: external calls to it raise undef after the load")

    fun_uses = tuple(all_uses) if d.reload_needed else ()
    by_fn: dict[str, list] = {}
    for u in fun_uses:
        by_fn.setdefault(u.function, []).append(u)
    for fn, uses in sorted(by_fn.items()):
        top = max(uses, key=lambda u: _FUN_RANK[u.cls])
        n = sum(1 for u in uses if u.cls == top.cls)
        if top.cls == "stored":
            lasting = top.where in _FATAL_STORES
            add("fun_invalidated", fn,
                f"{n} fun(s) created by {fn} in the old code are kept in {top.where}: "
                "after the purge, " + ("the process that calls one raises badfun "
                                       "(the module MD5 changed)" if lasting else
                                       "the receiver that calls one raises badfun"),
                severity="error" if lasting else "warning")
        elif top.cls == "escapes":
            add("fun_invalidated", fn,
                f"{n} fun(s) created by {fn} in the old code are returned to its callers: "
                "one that keeps it raises badfun when calling it after the purge (use "
                "fun M:F/A for funs that outlive a load)")
        elif top.cls == "unknown":
            add("fun_may_outlive_load", fn,
                f"{n} fun(s) created by {fn} in the old code go where the analysis cannot "
                "follow (a local or unknown call): if kept past the purge they raise badfun")

    gen = (otp_behaviours(new) | otp_behaviours(old)) & GEN_BEHAVIOURS
    ex_old, ex_new = elixir_facts(old), elixir_facts(new)
    asked: tuple = ()
    if gen and d.reload_needed:
        cc_arity = 4 if "gen_statem" in gen else 3
        cc = f"code_change/{cc_arity}"
        # `use GenServer` injects a code_change that returns the state unchanged: only
        # one the author wrote converts anything.
        has_cc = any(e.name == "code_change" and e.arity == cc_arity for e in new.exports) \
            and (ex_new is None or ex_new.written(cc))
        shapes = state_shape_changes(old, new, gen)
        asked = (shapes,)
        if shapes is not None and shapes.in_state:
            what = _some(shapes.in_state)
            if has_cc:
                add("code_change_needs_advanced_update", cc,
                    f"{what} changed and its processes keep it in their state: {cc} "
                    "converts it only when the upgrade goes through sys:change_code "
                    "(appup {update, M, {advanced, Extra}}), not on a plain load and purge")
            else:
                add("state_change_without_code_change", None,
                    f"{what} changed and its processes keep it in their state "
                    f"({shapes.why}), and no {cc} "
                    + ("is written (use GenServer's default returns the state unchanged)"
                       if ex_new is not None else "is exported")
                    + ": after the load the callbacks run on old-shaped state")
        if shapes is not None and shapes.elsewhere:
            add("record_changed_outside_state", None,
                f"{_some(shapes.elsewhere)} changed in a {'/'.join(sorted(gen))} module, "
                "but no callback keeps it in the process state or reads it from there: "
                "the processes build each one anew in the new shape (one kept elsewhere, "
                "in ETS or a message, keeps the old shape)")
        if shapes is None and (ex_old is None or ex_new is None):
            # No debug info to compare the state with (Elixir facts, when present, say
            # the struct did not change: then nothing is guessed).
            touched = sorted(GEN_CALLBACKS & changed)
            if touched and not has_cc:
                add("callbacks_changed_without_code_change", None,
                    f"{', '.join(touched)} changed in a {'/'.join(sorted(gen))} module with no "
                    f"debug info to compare state records, and no code_change/{cc_arity} is exported")
        if "gen_server" in gen:
            for cb, fate, sev in _REMOVED_CALLBACK_FATES:
                if _implements(old, ex_old, cb) and not _implements(new, ex_new, cb):
                    add("callback_removed", cb,
                        f"{cb} is no longer implemented: {fate}", severity=sev)
        vsn_old, vsn_new = old.vsn, new.vsn
        hand_set = hand_set_vsn(new)
        if has_cc and hand_set and vsn_old == vsn_new:
            add("vsn_not_bumped", f"code_change/{cc_arity}",
                f"code_change/{cc_arity} is exported but -vsn stays {_vsn_text(vsn_new)}: the appup's "
                "code_change receives the same version it upgrades to")

    if "supervisor" in (otp_behaviours(old) | otp_behaviours(new)) and d.reload_needed:
        _supervisor_children(old, new, changed, add)

    if "on_load" in d.attributes or (old.on_load and f"{old.on_load[0]}/{old.on_load[1]}" in changed):
        a = d.attributes.get("on_load")
        what = (f"on_load changes ({_fa(a['old'])} -> {_fa(a['new'])})" if a else
                f"the on_load function {_fa(old.on_load)} changed")
        add("on_load_changed", _fa(new.on_load) if new.on_load else None,
            f"{what}: the new code becomes current only if it returns ok; if it fails, the "
            "load fails and the old code stays current")

    def is_nif(m):
        return bool(m.nifs) or any(i.module == "erlang" and i.function == "load_nif"
                                   for i in m.imports) or any(
            ins.name == "nif_start" for fn in m.functions for ins in fn.instructions[:4])

    if d.reload_needed and (is_nif(old) or is_nif(new)):
        add("nif_changed", None,
            "a NIF module changed: the NIF library is loaded again by the new code, which "
            "fails unless the library has an upgrade callback")

    return HotLoadReport(d, tuple(out), frozenset(local_loops), frozenset(ext_loops),
                         frozenset(blocked), frozenset(mixed_loops), fun_uses, asked)


def _process_starts(m: BeamModule, loops, spawned) -> dict[str, str]:
    """Functions where long-running processes of ``m`` start or live, each with what
    they are: a behaviour's callbacks (its own process runs them), receive loops, and
    the functions new processes are spawned to run."""
    out: dict[str, str] = {}
    for b in sorted(otp_behaviours(m) & GEN_BEHAVIOURS):
        callbacks = set(STATE_ARGS.get(b, ())) | {"init/1"}
        if b == "gen_statem" and not any(e.name == "handle_event" and e.arity == 4
                                          for e in m.exports):
            # State functions (callback mode state_functions): Name(Type, Content, Data).
            callbacks |= {f"{e.name}/3" for e in m.exports if e.arity == 3
                          and e.name not in ("code_change", "terminate", "format_status")}
        for cb in callbacks:
            out.setdefault(cb, f"the {b} process itself runs {cb}")
    for f in loops:
        out.setdefault(f, f"the processes of the receive loop {f}")
    for f in spawned:
        out.setdefault(f, f"processes spawned to run {f}")
    return out


def _callers(edges: dict) -> dict[str, set]:
    out: dict[str, set] = {}
    for f, callees in edges.items():
        for g in callees:
            out.setdefault(g, set()).add(f)
    return out


def _ancestors(f: str, callers: dict) -> set:
    """``f`` and every function that reaches it by local calls."""
    seen, todo = {f}, [f]
    while todo:
        for g in callers.get(todo.pop(), ()):
            if g not in seen:
                seen.add(g)
                todo.append(g)
    return seen


def _who_waits(f: str, callers: dict, starts: dict) -> tuple[bool, str]:
    """Is the process that waits in ``f`` a long-running one (a behaviour's, a loop's, a
    spawned one)?  With the reason, for the message."""
    found = sorted(starts[g] for g in _ancestors(f, callers) if g in starts)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return True, f"long-running processes wait there: {found[0]}{more}"
    return False, ("it is reached from no callback, loop or spawn of this module: the "
                   "processes that wait there are its callers', whose lifetime is not known")


def _soft_purge_note(f: str, of: _Facts, callers: dict, changed) -> str:
    """What loading with soft_purge instead means for the processes waiting in ``f``."""
    nxt = set()
    for g in _ancestors(f, callers):
        nxt |= {g} | _reach(of.local_edges, g)
    stale = sorted(nxt & set(changed))
    if stale:
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        return ("with soft_purge the purge waits instead, and these processes run the old "
                f"versions of the changed {shown} (where they are or what they call next) "
                "to completion")
    return ("with soft_purge the purge waits instead, and these processes finish on old "
            "code that this change does not touch")


def _some(names, n: int = 6) -> str:
    """At most ``n`` names, then how many more."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _vsn_text(vsn) -> str:
    """The ``vsn`` attribute's value as Erlang writes it (``"1"``, not ``[49]``)."""
    return source_text(vsn)


def _fa(v) -> str:
    return "none" if not v else f"{v[0]}/{v[1]}"


_FUN_RANK = {c: i for i, c in enumerate(FUN_CLASSES)}
#: Where a stored fun is called again by a long-lived holder.
_FATAL_STORES = frozenset({"the process state", "ETS", "persistent_term",
                           "the process dictionary", "an Agent's state"})

#: Kinds about the file itself, which keep their severity when the MD5 is unchanged.
_ABOUT_THE_FILE = frozenset({"reload_not_needed", "module_name_differs", "opcode_too_new"})


def _supervisor_children(old, new, changed, add) -> None:
    """``supervisor_children_changed`` when the child specs of ``init/1`` (or of the
    local functions it calls) changed: which ids come and go, when the constant specs
    tell (see :mod:`beaminspect.analysis.supervisor`)."""
    touched = sorted((init_reach(old) | init_reach(new)) & changed)
    if not touched:
        return
    a, b = child_ids(old), child_ids(new)
    update = ("an upgrade through {update, M, supervisor} (sys:change_code) has the "
              "supervisor call the new init/1 and merge the specs")
    if a is not None and b is not None and a != b:
        added, removed = sorted(b - a), sorted(a - b)
        what = "; ".join(p for p in (f"added {', '.join(added)}" if added else "",
                                     f"removed {', '.join(removed)}" if removed else "") if p)
        add("supervisor_children_changed", "init/1",
            f"the child specs change ({what}): {update}, which starts no added child "
            "(supervisor:restart_child/2 starts one) and stops no removed one (it keeps "
            "running); a plain load does not re-read them at all")
    else:
        known = "the same child ids" if a is not None and a == b else \
            "child specs built at run time (their ids are not known here)"
        add("supervisor_children_changed", "init/1",
            f"{', '.join(touched)} changed, with {known}: {update}; running children keep "
            "running as they were started, with the new specs used from their next "
            "restart; a plain load does not re-read them at all", severity="info")


#: gen_server callbacks whose removal old callers notice: (callback, what their
#: messages then do, severity).
_REMOVED_CALLBACK_FATES = (
    ("handle_call/3", "calls old callers still make crash the server (the default "
     "handle_call raises, or the callback is undefined) and the callers exit", None),
    ("handle_cast/2", "casts old callers still send crash the server (the default "
     "handle_cast raises, or the callback is undefined)", None),
    ("handle_info/2", "messages it handled are logged as unexpected and dropped by the "
     "default handle_info", "warning"),
)


def _implements(m: BeamModule, facts, cb: str) -> bool:
    """Does the author's code of ``m`` implement callback ``cb``?  With Elixir debug
    info, a callback that ``use`` injected does not count."""
    name, arity = cb.rsplit("/", 1)
    if not any(e.name == name and e.arity == int(arity) for e in m.exports):
        return False
    return facts is None or facts.written(cb)


def state_changed(old: BeamModule, new: BeamModule, report: HotLoadReport) -> bool:
    """Did the state of a gen_server/gen_statem/gen_event module change shape?  Records
    from the debug info when both files have it, else changed callbacks."""
    if not (otp_behaviours(old) | otp_behaviours(new)) & GEN_BEHAVIOURS:
        return False
    if not report.diff.reload_needed:
        return False
    if report.state_shapes:
        shapes = report.state_shapes[0]
    else:
        shapes = state_shape_changes(old, new, (otp_behaviours(old) | otp_behaviours(new))
                                     & GEN_BEHAVIOURS)
    if shapes is not None:
        return bool(shapes.in_state)
    if elixir_facts(old) is not None and elixir_facts(new) is not None:
        return False
    return bool(GEN_CALLBACKS & report.diff.changed_functions)


def max_severity_at_least(report: HotLoadReport, threshold: str) -> bool:
    """Does a finding of ``report`` reach ``threshold``?  (:meth:`HotLoadReport.failed`.)"""
    return report.failed(threshold)
