"""Findings: the one record type, the registry of every kind, and severities.

A :class:`Finding` is what the hot-load analysis (:mod:`beaminspect.analysis.hotload`),
the release comparison (:mod:`beaminspect.release.gate`) and the appup checks
(:mod:`beaminspect.release.appup`) report.  :data:`REGISTRY` declares every kind once:
its name, default severity, a one-line summary, a paragraph explaining it and how to
resolve it.  The README's table, ``beaminspect kinds`` and the SARIF rules are
generated from it; a policy may only name kinds listed here.

Severities are ordered ``info < warning < error``; a policy can change the severity of
a kind (or turn it ``off``) with :func:`effective_severity`, and a report fails a
threshold by :func:`exceeds`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SEVERITIES", "SEVERITY_VALUES", "FAIL_ON_VALUES", "SCOPES", "Kind", "REGISTRY",
           "KINDS", "DEFAULTS", "Finding", "MODULE_FIELDS", "RELEASE_FIELDS", "effective_severity",
           "exceeds", "worst", "severity_rank"]

#: Severities, lowest first.
SEVERITIES = ("info", "warning", "error")
#: What a policy may set a kind to.
SEVERITY_VALUES = SEVERITIES + ("off",)
#: Failure thresholds (``never``: no finding fails).
FAIL_ON_VALUES = SEVERITIES + ("never",)
#: Where a kind is found: one module's hot load, the release comparison, the appups.
SCOPES = ("module", "release", "appup", "node")


@dataclass(frozen=True)
class Kind:
    """One finding kind: ``summary`` is one line, ``explanation`` says what happens and
    why, ``fix`` how to resolve it."""

    name: str
    severity: str
    scope: str
    summary: str
    explanation: str
    fix: str


def _k(name, severity, scope, summary, explanation, fix) -> Kind:
    return Kind(name, severity, scope, summary, " ".join(explanation.split()),
                " ".join(fix.split()))


#: Every finding kind, in documentation order (module, release, appup).
REGISTRY: tuple[Kind, ...] = (
    # -- one module's hot load (beaminspect diff; every changed module of a gate run)
    _k("purge_kills_local_loop", "error", "module",
       "a receive loop closed by local calls: the purge kills its processes",
       """A process moves to new code only on an external call (M:F(...)). A receive
       loop that calls itself with local calls never leaves the old instance, and when
       the old code is purged (the next load, or the purge step of a release upgrade)
       every process still running it is killed.""",
       """Re-enter the loop through ?MODULE:loop(...) (or a gen_* behaviour) so that
       processes move to the new code on their next message, or load with soft_purge
       and restart the processes yourself."""),
    _k("purge_kills_idle_external_loop", "warning", "module",
       "a loop re-entered through an external call: processes that get no message "
       "between load and purge are killed",
       """The loop re-enters through ?MODULE:loop(...), so a process moves to the new
       code on its next message. A process that receives nothing between the load and
       the purge is still in the old code and the purge kills it.""",
       """Wake the processes between the load and the purge (send them a message, or use
       sys:suspend/change_code/resume through an {update, M, ...} appup instruction), or
       load with soft_purge and purge once they have moved."""),
    _k("purge_kills_blocked_call", "warning", "module",
       "a non-tail blocking call: processes waiting in it at the purge are killed",
       """A process blocked in a receive or in a non-tail call (gen_server:call,
       timer:sleep, a local function that receives...) made from the old code has a
       return address into the old code; if it is still waiting when the old code is
       purged, it is killed. An error when the processes that wait there are
       long-running ones (a behaviour's own process in its callbacks, a receive loop,
       a process spawned to run the function), a warning when they are the callers of
       an API function, whose lifetime is not known; the message says which. With
       soft_purge the purge waits instead, and the processes run the old versions of
       the changed functions they are in or call next to completion.""",
       """Make the blocking call a tail call or move it into a module that does not
       change, keep calls short around upgrades, or load with soft_purge so the purge
       waits until no process runs the old code."""),
    _k("stale_code_in_loop", "warning", "module",
       "a changed function reached only by local calls from a long-running loop keeps "
       "running old code",
       """A function changed, but processes of a long-running loop reach it only by
       local calls from the old instance: they keep running its old version until they
       re-enter through an external call or the purge kills them.""",
       """Call the changed function as ?MODULE:F(...) from the loop, or make the loop
       re-enter through an external call so its processes pick up the new code."""),
    _k("export_removed", "error", "module",
       "an export was removed or its arity changed: external callers get undef",
       """An exported function of the old file is not exported by the new one (removed,
       renamed or its arity changed). Every external call to it, from other modules or
       from funs fun M:F/A, raises undef after the load.""",
       """Keep the old export as a wrapper until no caller uses it, or upgrade the callers
       in the same release and load them first."""),
    _k("fun_invalidated", "warning", "module",
       "funs created by the old code are kept where they outlive the load: they raise "
       "badfun after the purge",
       """A fun created by the old code refers to that instance (by the module MD5). Once
       the old code is purged, calling such a fun raises badfun. The analysis follows
       each fun to where it goes: one kept in a behaviour's state, ETS, persistent_term
       or the process dictionary is an error (the process or caller that calls it
       next dies), one sent in a message (a gen_server's reply too) or returned by an
       exported function a warning.
       Funs that are only called, handed to a function that calls and drops them
       (lists, maps, Enum...), or run as a new process are not reported.""",
       """Store fun M:F/A (an external fun, which always runs the current code) instead
       of local funs in anything that outlives a code load."""),
    _k("fun_may_outlive_load", "info", "module",
       "a fun created by the old code goes where the analysis cannot follow it",
       """The fun is passed to a local or unknown function, captured by another fun, or
       its register is lost: whether anything keeps it past the purge (and then raises
       badfun) is not known.""",
       """Nothing, if the fun does not outlive the call; otherwise use fun M:F/A for
       funs that are kept."""),
    _k("state_change_without_code_change", "error", "module",
       "the state shape of a behaviour module changed and no code_change is exported",
       """A record (or the Elixir struct) of a gen_server, gen_statem or gen_event module
       changed (compared from the debug info), its processes keep it in their state
       (init/1 or a callback returns it as the state or inside it, or a callback reads
       it from the state argument), and the new module has no code_change of its own:
       running processes keep their state in the old shape and the new code fails on
       it. A changed record that does not reach the state is
       record_changed_outside_state (info).""",
       """Export code_change/3 (code_change/4 for gen_statem) that converts the old state,
       and upgrade with {update, M, {advanced, Extra}}."""),
    _k("record_changed_outside_state", "info", "module",
       "a record or struct of a behaviour module changed, but its processes do not keep "
       "it in their state",
       """A record (or the module's struct) changed, but neither init/1 nor a callback
       puts it into the state it returns, and no callback reads it from the state
       (found in the code: the values placed in {ok, State}, {reply, R, State},
       {noreply, State}... and the records tested on the state argument). The
       processes build such values anew, so the load does not break them; a value
       kept elsewhere (ETS, a message in flight) still has the old shape.""",
       """Nothing for the processes; check that code reading the record from ETS or
       from messages of the old version copes with the old shape."""),
    _k("code_change_needs_advanced_update", "warning", "module",
       "the state shape changed and code_change converts it, but only an advanced "
       "update runs it",
       """code_change runs only when the release handler suspends the processes and
       calls sys:change_code on them, which an appup's {update, M, {advanced, Extra}}
       does. A plain load_module (or code:load_file followed by a purge) switches the
       callbacks to the new code without converting the state, so the next callback
       runs on a state of the old shape.""",
       """Upgrade the module with {update, M, {advanced, Extra}} in the appup (or call
       sys:suspend/sys:change_code/sys:resume yourself); never with load_module."""),
    _k("callback_removed", "error", "module",
       "a behaviour callback the author wrote was removed: messages old callers still "
       "send reach the default, which raises or drops them",
       """A handle_call/3, handle_cast/2 or handle_info/2 that the old code implemented is
       gone in the new one. Callers built against the old code keep sending the
       messages it handled: a gen_server without the callback (or with the default that
       use GenServer injects) crashes on a call or cast, and logs and drops an
       unexpected info message.""",
       """Keep a clause for every message old callers may still send until they are
       upgraded too, or upgrade the callers first (DepMods in the appup)."""),
    _k("callbacks_changed_without_code_change", "warning", "module",
       "init or callbacks of a behaviour module changed (no debug info to compare "
       "records) and no code_change is exported",
       """Without debug info the state records cannot be compared, so a changed init or
       callback of a gen_server, gen_statem or gen_event module is taken as a possible
       state change, and no code_change is exported to convert the state.""",
       """Compile with debug_info so the records can be compared, or export code_change
       and upgrade with {update, M, {advanced, Extra}}; turn the kind off in the policy
       when the state is known not to change."""),
    _k("supervisor_children_changed", "warning", "module",
       "a supervisor's child specs change: an upgrade starts no added child and stops "
       "no removed one",
       """When a supervisor's init/1 (or what it calls) changes, an upgrade through
       {update, Sup, supervisor} has the supervisor call the new init/1
       (supervisor:code_change/3) and merge the specs: a child in both gets the new spec
       but keeps running as it was started; a child only in the new specs is added
       without being started; a child only in the old specs is kept, running. A plain
       load does not call init/1 at all. At warning when children are added or removed,
       at info when the specs change with the same ids or cannot be read.""",
       """Start added children with supervisor:restart_child/2 and stop removed ones
       with supervisor:terminate_child/2 and delete_child/2 (in the appup, an {apply,
       {M, F, A}} after the update), or restart the application."""),
    _k("vsn_not_bumped", "warning", "module",
       "code_change is exported but the hand-set -vsn did not change",
       """The module sets -vsn by hand and exports code_change, but the version stays the
       same: code_change receives as its old version the version it upgrades to, so a
       conversion keyed on the version does nothing.""",
       """Change the -vsn attribute with every release of the module, or remove it and let
       the compiler use the MD5."""),
    _k("on_load_changed", "warning", "module",
       "the on_load function was added, changed or removed",
       """The new code becomes current only if its on_load function returns ok; if it
       fails (a missing NIF library, a failed initialisation), the load fails and the old
       code stays current.""",
       """Check that the on_load function succeeds on the target system (its NIF library
       and files are installed) before upgrading."""),
    _k("nif_changed", "error", "module",
       "a NIF module changed: a NIF library without an upgrade callback cannot be loaded "
       "twice",
       """The new code of a NIF module loads its library again while the old instance
       still holds it; unless the library defines an upgrade callback, the load fails.""",
       """Give the NIF library an upgrade callback (ERL_NIF_INIT's upgrade), or restart the
       application or node instead of hot-loading the module."""),
    _k("opcode_too_new", "error", "module",
       "the new file uses opcodes the running release's loader does not know",
       """The new file was compiled by a later OTP release and uses instructions the
       running release's loader does not know: code:load_file fails.""",
       """Compile for the running release (the same OTP major, or an older one), or upgrade
       the runtime first."""),
    _k("module_name_differs", "error", "module",
       "the two files define different modules",
       """The old and the new file define different module names; loading the new file
       would load another module instead of replacing this one.""",
       """Compare the two versions of the same module; check the file names and the
       -module attribute."""),
    _k("reload_not_needed", "info", "module",
       "the MD5 is unchanged: loading would not change the running code",
       """The two files have the same module MD5 (only chunks outside the code differ,
       such as debug info or compile options): the running code already is this code.""",
       """Nothing to do; leave the module out of the upgrade's instructions if it need not
       be loaded."""),
    # -- the release comparison (beaminspect gate)
    _k("undef_after_upgrade", "error", "release",
       "a call to a function that the new release does not export (or to a removed module)",
       """A module of the new release calls a function that no module of the new release
       exports, or a module the upgrade removes: the call raises undef.""",
       """Add or keep the called function, fix the call, or declare the module or
       application external in the policy (external = [...]) when it is provided outside
       the release."""),
    _k("export_removed_still_called", "error", "release",
       "an export removed by a changed module is still called by another module of the "
       "new release",
       """A changed module no longer exports a function that another module of the new
       release still calls: after the upgrade that call raises undef.""",
       """Keep the export until its callers are changed, or change the callers in the same
       upgrade."""),
    _k("load_order", "warning", "release",
       "a new call into a module changed in the same upgrade: load the callee first "
       "(DepMods)",
       """A module newly calls a module that changes in the same upgrade. If the caller is
       loaded first, the call reaches the old callee, which may not have the function
       yet.""",
       """List the callee in the caller's DepMods in the appup ({load_module, Caller,
       [Callee]}) so that systools orders the loads; beaminspect appup writes it."""),
    _k("module_moved_app", "warning", "release",
       "a module moved to another application",
       """A module is in one application in the old release and in another in the new
       one. Both applications' appups must agree, and between their two steps the module
       is unavailable.""",
       """Delete the module in the old application's appup and add it in the new one's,
       or keep it where it was."""),
    _k("duplicate_module", "error", "release",
       "the same module name twice in a release",
       """Two .beam files of one release define the same module name; only one of them is
       loaded, which depends on the code path order.""",
       """Remove or rename one of the copies."""),
    _k("unreadable_module", "error", "release",
       "a .beam file of the release could not be read",
       """A .beam file of the release is truncated, corrupt or not a BEAM file, so it
       cannot be analysed and the code loader will reject it too.""",
       """Rebuild the file; the message names what could not be read."""),
    _k("module_file_mismatch", "error", "release",
       "a .beam file defines a module other than its file name says",
       """The code server finds modules by file name: a file M.beam that defines another
       module cannot be loaded as M.""",
       """Rename the file after its -module attribute, or fix the attribute."""),
    _k("app_vsn_not_bumped", "warning", "release",
       "modules of an application changed but its version did not: release_handler will "
       "not upgrade it",
       """Modules of an application changed but its version in the .app file did not;
       release_handler upgrades applications by version, so it does not touch this
       one.""",
       """Bump the application's vsn in its .app file (and write an appup from the old
       version)."""),
    _k("application_removed", "warning", "release",
       "an application of the old release is not in the new one: the upgrade removes it",
       """An application that the old release has is missing from the new one. The relup
       removes it (remove_application): its processes are stopped and its modules
       deleted, and anything that still calls them gets undef.""",
       """Make sure nothing left in the new release uses the application (export_removed_
       still_called and undef_after_upgrade name such calls), or keep it."""),
    _k("app_start_changed", "warning", "release",
       "an application's mod, applications, included_applications or start_phases "
       "changed: an upgrade does not run the new start-up",
       """The .app keys that say how an application starts changed. A release upgrade
       does not restart a running application: a dependency added to applications is
       not started for it, a new callback module's start/2 is not called, new start
       phases do not run.""",
       """Restart the application in the appup ({restart_application, App}), or do by
       hand what the new start-up would (start the dependency, the processes)."""),
    _k("app_registered_changed", "info", "release",
       "an application's registered names changed",
       """The registered key of the .app file lists the names the application registers;
       systools checks them for clashes between applications. Nothing reads it at run
       time.""",
       """Keep it true to what the code registers."""),
    _k("config_changed", "info", "release",
       "an application's environment changes, and it is told (config_change/3) or reads it "
       "when it runs",
       """The environment of an application (its .app env, overridden by the release's
       sys.config) changes. After an upgrade the release handler sets the new values and
       calls config_change/3 of the application's callback module with what changed.""",
       """Nothing to do if the callback handles the keys; check that it does."""),
    _k("config_changed_no_callback", "warning", "release",
       "an application's environment changes and its callback module has no "
       "config_change/3: nothing running is told",
       """The environment of an application with a callback module changes, and that
       module exports no config_change/3. The release handler sets the new values, but
       processes that read them when they started keep the old values until they
       restart.""",
       """Export config_change(Changed, New, Removed) from the callback module and pass
       the new values on, or restart what reads them."""),
    _k("runtime_config_changed", "warning", "release",
       "runtime.exs changed: it is evaluated at boot, not by a hot upgrade",
       """A mix release evaluates config/runtime.exs when it boots. A hot upgrade never
       runs it, so what it sets takes effect at the next restart only.""",
       """Move what the upgrade must change into sys.config (config/config.exs) where the
       release handler applies it, or plan a restart."""),
    _k("priv_changed", "info", "release",
       "files under an application's priv/ changed",
       """Files under priv/ are replaced on disk by the upgrade. What a process read from
       them before (templates, schemas, certificates) keeps its old content until it
       reads them again.""",
       """Reload what processes keep from these files, if it matters."""),
    _k("nif_library_not_reloaded", "warning", "release",
       "a native library under priv/ changed but no module that loads it is reloaded",
       """A NIF library is loaded by the on_load function of a module, when that module
       is loaded. The library changed, but no module of the application with an on_load
       function changes, so the running system keeps the old library.""",
       """Change (and load) the module that loads the library, for example by bumping its
       -vsn, or restart the node."""),
    _k("new_emulator_needed", "warning", "release",
       "the two releases run on different ERTS versions: the upgrade restarts the node",
       """The old and new releases name different ERTS versions. systools starts the relup
       with restart_new_emulator: the node restarts on the new emulator with the new
       release's kernel, stdlib and sasl and the old release's other applications, then
       upgrades those. Every process restarts; every module of those other applications
       must load on the new emulator. The modules of erts, kernel, stdlib and sasl are
       not hot-loaded, so the report leaves out what it would predict for loading them
       (purges, old code in loops and funs, state across code_change, NIFs, on_load,
       supervisors, the load order of calls into them), and their appups need no more
       than restart_new_emulator.""",
       """Plan the restart (connections drop, state in processes is lost), and make sure
       the old release's modules load on the new OTP release (see
       module_refused_by_new_emulator)."""),
    _k("module_refused_by_new_emulator", "error", "release",
       "a module of the running release does not load on the new release's emulator",
       """When the emulator changes, the node restarts on the new emulator with the old
       release's applications, but for kernel, stdlib and sasl, which it takes from the
       new release, before upgrading them. A module of those old applications that the
       new OTP release's loader refuses (code from a compiler it no longer supports,
       for example) stops that restart.""",
       """Rebuild the old release with a compiler the new OTP release supports and install
       it first, or upgrade in two steps through a release both emulators load."""),
    _k("restart_window_undef", "warning", "release",
       "a call between the restarted kernel, stdlib or sasl and another application's "
       "old code fails until the upgrade ends",
       """When the emulator changes, release_handler restarts the node on a temporary
       release: the new ERTS, kernel, stdlib and sasl and the old release's other
       applications, which the rest of the relup then upgrades. Until then, an old module
       that calls a function the new kernel, stdlib or sasl no longer has, or a new
       module of theirs that calls a function only another application's new version
       has, raises undef. Processes the restart starts run that code first, some of
       them at boot.""",
       """Keep the function in both versions for one release and remove it in a later
       upgrade, or upgrade in two steps: first the applications, so that no old code
       calls it, then the emulator."""),
    _k("protocol_dispatch_changed", "info", "release",
       "a consolidated Elixir protocol changes its implementations",
       """A mix release consolidates each protocol into one module under
       releases/VSN/consolidated, which the boot script puts first on the code path. When
       the set of implementations changes, that module changes: once it is loaded, every
       call through the protocol dispatches with the new table. An added implementation
       must be loaded before it; a removed one makes calls for that type raise
       Protocol.UndefinedError (a warning then).""",
       """Load new implementation modules before the consolidated protocol (DepMods), and
       make sure nothing still calls the protocol for a type whose implementation is
       removed."""),
    _k("release_warning", "info", "release",
       "the release reader noticed something unusual (see the message)",
       """Something about the release's files or layout was unexpected but not fatal: an
       archive member skipped as unsafe or unreadable, a nested archive, an unreadable
       .rel, .app or RELEASES file, a choice between several releases. The message says
       what, and where.""",
       """Read the message and fix the release if needed."""),
    # -- appup checks (beaminspect gate)
    _k("appup_malformed", "error", "appup",
       "an .appup file cannot be read or is not {Vsn, Up, Down}",
       """The application's .appup file cannot be parsed, is not a single term {Vsn,
       [{UpFrom, Instructions}], [{DownTo, Instructions}]}, has an invalid version regular
       expression, or has a malformed instruction.""",
       """Fix the file; the message names the problem. beaminspect appup writes a
       well-formed one to start from."""),
    _k("appup_missing", "error", "appup",
       "an application's version changed and it has no .appup file",
       """The application's version changed but it has no .appup file, so systools cannot
       build a relup that upgrades it.""",
       """Add ebin/APP.appup (beaminspect appup OLD NEW suggests one), or restart the
       application in the relup."""),
    _k("appup_wrong_vsn", "error", "appup",
       "the .appup's version is not the application's new version",
       """The first element of the .appup term must be the application's new version;
       release handling ignores an appup written for another version.""",
       """Set the appup's version to the vsn of the application's .app file."""),
    _k("appup_no_upfrom", "error", "appup",
       "no UpFrom entry of the .appup matches the old version",
       """None of the appup's UpFrom entries (a version string, or a binary holding a
       regular expression that must match the whole version) matches the version being
       upgraded from, so there is no upgrade path.""",
       """Add an UpFrom entry for the old version, or widen its regular expression."""),
    _k("appup_no_downto", "error", "appup",
       "no DownTo entry of the .appup matches the old version",
       """None of the appup's DownTo entries matches the old version, so the upgrade cannot
       be rolled back.""",
       """Add a DownTo entry for the old version with the instructions that undo the
       upgrade."""),
    _k("appup_missing_module", "error", "appup",
       "a changed, added or removed module has no instruction in the .appup",
       """A module that changed, was added or was removed has no instruction in the UpFrom
       entry for the old version: the upgrade leaves the old code running (or misses the
       new or removed module).""",
       """Add {load_module, M} or {update, M, ...} for a changed module, {add_module, M}
       for a new one, {delete_module, M} for a removed one."""),
    _k("appup_unknown_module", "warning", "appup",
       "an .appup instruction names a module the application does not have",
       """An instruction names a module that is not part of the application's new version
       (nor removed by the upgrade); systools fails or the instruction does nothing.""",
       """Remove the instruction or fix the module name."""),
    _k("appup_advanced_without_code_change", "error", "appup",
       "{update, M, {advanced, _}} for a module that does not export code_change",
       """An {update, M, {advanced, Extra}} instruction makes release_handler call
       M:code_change, but the module does not export it: the upgrade fails when the
       process is suspended for the code change.""",
       """Export code_change/3 (code_change/4 for gen_statem) from the module, or use
       load_module or {update, M, soft} instead."""),
    _k("appup_brutal_purge_kills", "warning", "appup",
       "load_module with brutal_purge for a module whose purge kills processes",
       """The appup loads a module with brutal_purge (the default) while the analysis
       predicts that processes still run its old code at the purge: they are killed.""",
       """Use soft_purge ({load_module, M, soft_purge, soft_purge, []}) or an update
       instruction that suspends the processes."""),
    _k("appup_update_needed", "error", "appup",
       "a behaviour module whose state changed is only reloaded: it needs "
       "{update, M, {advanced, Extra}}",
       """The state of a gen_server, gen_statem or gen_event module changed and the module
       exports code_change, but the appup only loads it: load_module does not call
       code_change, so running processes keep the old state.""",
       """Use {update, M, {advanced, Extra}} so that release_handler suspends the processes
       and calls code_change."""),
    # -- what a running node says (diff and gate with --node)
    _k("live_drift", "error", "node",
       "the node runs a module whose MD5 is not the old release's",
       """The module loaded on the node is not the file of the old release: it was patched
       by hand, or the node runs another build. Every prediction about that module is
       about code the node does not run.""",
       """Find out what the node runs (beaminspect live NODE), and gate against the release
       that is really installed, or make the node run the old release first."""),
    _k("live_old_code", "error", "node",
       "a module the upgrade loads still has old code on the node",
       """An earlier load left an old instance that was never purged. Loading the module
       again fails with not_purged until the old code is purged, and that purge kills the
       processes still running it.""",
       """Find the processes in the old code (erlang:check_process_code/2), let them
       finish or restart them, purge (code:soft_purge/1) and only then upgrade."""),
    _k("live_process_killed", "error", "node",
       "a process on the node waits in code the upgrade replaces: the purge kills it",
       """The process waits in a receive of the old code, or is blocked in a call that
       returns into it. It is still there when the purge comes, and the purge kills it.""",
       """Make the process leave the old code before the purge (an external call, a
       {update, M, ...} appup instruction that suspends it), load with soft_purge and
       purge once it has moved, or restart it."""),
    _k("live_process_at_risk", "warning", "node",
       "a process on the node is in code the upgrade replaces and may still be there "
       "at the purge",
       """The process runs in the old code now, or waits in a loop that moves to the new
       code only if a message arrives between the load and the purge. Whether the purge
       kills it depends on what happens in between.""",
       """Wake it (a message) between the load and the purge, use soft_purge, or suspend
       it with an {update, M, ...} instruction."""),
    _k("live_restart", "info", "node",
       "the upgrade restarts the node on a new emulator: its processes end before any "
       "module is hot-loaded",
       """The upgrade moves to another emulator, so release_handler restarts the node
       (restart_new_emulator) before it loads the other applications' new modules. The
       processes running now end with the restart; what the purge does is decided for the
       processes the restart starts, which the module findings predict. Nothing loaded
       by hand survives the restart, and no old code is left to purge.""",
       """Plan the restart as a restart: drain connections and hand over state that lives
       only in processes. If the node runs code patched by hand (live_drift), put the
       patch in the new release."""),
)

#: The registry by kind name.
KINDS: dict[str, Kind] = {k.name: k for k in REGISTRY}
#: Every kind -> (default severity, summary).
DEFAULTS: dict[str, tuple[str, str]] = {k.name: (k.severity, k.summary) for k in REGISTRY}

#: Fields of a finding in a module report (``beaminspect diff``) and a gate report.
MODULE_FIELDS = ("kind", "severity", "function", "message")
RELEASE_FIELDS = ("kind", "severity", "module", "function", "message", "location", "app")


@dataclass(frozen=True)
class Finding:
    """One finding.  ``function`` is ``f/a`` in a module report and ``mod:f/a`` in a
    gate report; ``module`` the module concerned, ``location`` the file to point at (a
    beam or an appup), ``app`` the application concerned (gate reports only)."""

    kind: str
    severity: str
    function: str | None
    message: str
    module: str | None = None
    location: str | None = None
    app: str | None = None

    def to_dict(self, fields: tuple = RELEASE_FIELDS) -> dict:
        return {name: getattr(self, name) for name in fields}


def effective_severity(kind: str, emitted: str | None = None,
                       overrides: dict | None = None) -> str:
    """The severity of a finding of ``kind``: the policy's (``overrides``, may be
    ``off``) if it names the kind, else the one the check gave (``emitted``), else the
    kind's default.  Raises ``KeyError`` for a kind missing from the registry."""
    if overrides and kind in overrides:
        return overrides[kind]
    if emitted is not None:
        return emitted
    return KINDS[kind].severity


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def worst(findings) -> str | None:
    """The highest severity among ``findings`` (None when there are none)."""
    best = None
    for f in findings:
        if best is None or SEVERITIES.index(f.severity) > SEVERITIES.index(best):
            best = f.severity
    return best


def exceeds(findings, threshold: str) -> bool:
    """Does any finding reach ``threshold`` (info, warning, error; ``never``: no)?"""
    if threshold == "never":
        return False
    t = SEVERITIES.index(threshold)
    return any(SEVERITIES.index(f.severity) >= t for f in findings)
