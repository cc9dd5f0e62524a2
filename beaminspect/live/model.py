"""The snapshot of a node: its release, loaded modules and the processes in them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadedModule:
    name: str
    md5: str | None          # hex, as module_info(md5); None for preloaded without one
    old_code: bool           # erlang:check_old_code/1: an old instance is still there
    file: str | None         # where code:all_loaded/0 says it came from


@dataclass(frozen=True)
class ProcessInfo:
    pid: str                                  # "<0.85.0>" as the node writes it
    registered_name: str | None
    initial_call: str | None                  # "m:f/a" (proc_lib's, translated)
    stack: tuple[tuple[str, str, int], ...]   # current stack, innermost first
    status: str                               # waiting, running, runnable...

    @property
    def current_function(self) -> str | None:
        if not self.stack:
            return None
        m, f, a = self.stack[0]
        return f"{m}:{f}/{a}"

    @property
    def waiting(self) -> bool:
        """Blocked in a receive (or a sleep, which is one)."""
        return self.status == "waiting"

    def modules(self) -> set[str]:
        return {m for m, _f, _a in self.stack}

    def to_dict(self) -> dict:
        return {"pid": self.pid, "registered_name": self.registered_name,
                "initial_call": self.initial_call, "current_function": self.current_function,
                "status": self.status, "waiting": self.waiting,
                "stack": [f"{m}:{f}/{a}" for m, f, a in self.stack]}


@dataclass(frozen=True)
class NodeSnapshot:
    node: str
    otp_release: int
    erts_version: str
    modules: dict            # name -> LoadedModule, sorted by name
    processes: tuple         # ProcessInfo, those asked about (see ``complete``)
    #: Every process of the node was asked about (``live`` without a module filter);
    #: otherwise only those whose stack or initial call names a module of interest.
    complete: bool = True

    def running(self, module: str) -> list[ProcessInfo]:
        """The processes with ``module`` on their stack."""
        return [p for p in self.processes if module in p.modules()]

    def old_code(self) -> list[str]:
        return [m.name for m in self.modules.values() if m.old_code]

    def to_dict(self) -> dict:
        return {
            "node": self.node,
            "otp_release": self.otp_release,
            "erts_version": self.erts_version,
            "modules": [{"module": m.name, "md5": m.md5, "old_code": m.old_code,
                         "processes": [p.pid for p in self.running(m.name)]}
                        for m in self.modules.values()],
            "processes": [p.to_dict() for p in self.processes],
        }
