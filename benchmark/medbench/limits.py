"""A run's process tree as one unit: a memory limit that holds for the whole tree, and a kill that
reaches every process in it.

Where the kernel lets medbench make a control group (cgroup v2 with the memory controller
delegated, or cgroup v1's memory hierarchy, writable e.g. as root), the child is placed in a new
one before it executes anything: every process it starts is in it too, the memory limit
(``memory.max`` / ``memory.limit_in_bytes``) counts them together, the kernel's OOM killer acts
inside it, and :meth:`ProcessTree.kill` ends all of them. Where no cgroup can be made, the limit
is ``RLIMIT_AS`` on each process (a tree of processes can together use more), and the record says
so.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_V2 = "cgroup v2 memory.max (whole process tree)"
CGROUP_V1 = "cgroup v1 memory.limit_in_bytes (whole process tree)"
RLIMIT = "RLIMIT_AS on each process (a tree of processes can use more in total)"
_PREFIX = "medbench-"


def _mounts() -> dict[str, Path]:
    """``{"v2": mount, "v1-memory": mount}`` from /proc/self/mountinfo."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        if rest[0] == "cgroup2":
            found.setdefault("v2", Path(fields[4]))
        elif rest[0] == "cgroup" and "memory" in rest[2].split(","):
            found.setdefault("v1-memory", Path(fields[4]))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per hierarchy: ``{"v2": "/a/b", "v1-memory": "/x"}``."""
    own: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own["v2"] = parts[2]
        elif "memory" in parts[1].split(","):
            own["v1-memory"] = parts[2]
    return own


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _make_group(limit_bytes: int | None) -> tuple[Path, str] | None:
    """A new cgroup under this process's own, with the memory limit set; None if not allowed."""
    mounts, own = _mounts(), _own_cgroups()
    name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    for kind in ("v2", "v1-memory"):
        if kind not in mounts or kind not in own:
            continue
        parent = mounts[kind] / own[kind].lstrip("/")
        if kind == "v2" and "memory" not in _read(parent / "cgroup.controllers").split():
            continue
        _sweep(parent)
        group = parent / name
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            if kind == "v2":
                if not (group / "memory.max").exists():
                    # The controller is there but not enabled for children of this group.
                    _write(parent / "cgroup.subtree_control", "+memory")
                if limit_bytes is not None:
                    _write(group / "memory.max", str(limit_bytes))
                    with contextlib.suppress(OSError):
                        _write(group / "memory.swap.max", "0")
            else:
                if limit_bytes is not None:
                    _write(group / "memory.limit_in_bytes", str(limit_bytes))
                    if (group / "memory.memsw.limit_in_bytes").exists():
                        with contextlib.suppress(OSError):  # swap accounting may be off
                            _write(group / "memory.memsw.limit_in_bytes", str(limit_bytes))
            return group, (CGROUP_V2 if kind == "v2" else CGROUP_V1)
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _sweep(parent: Path) -> None:
    """Remove empty groups left by runners that were killed (a group with processes stays)."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            if child.name.startswith(_PREFIX) and child.is_dir():
                pid = child.name[len(_PREFIX) :].split("-")[0]
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    with contextlib.suppress(OSError):
                        child.rmdir()


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


@dataclass
class ProcessTree:
    """The cgroup (or the per-process limit) of one run's child and everything it starts."""

    limit_mb: int | None
    group: Path | None
    mechanism: str | None  # CGROUP_V2 | CGROUP_V1 | RLIMIT | None (no limit asked, no cgroup)

    @classmethod
    def create(cls, limit_mb: int | None) -> ProcessTree:
        made = _make_group(None if limit_mb is None else limit_mb * 2**20)
        if made is not None:
            return cls(limit_mb, made[0], made[1] if limit_mb is not None else None)
        return cls(limit_mb, None, RLIMIT if limit_mb is not None else None)

    def enter(self) -> None:
        """Run in the forked child before exec: join the group, or limit this process."""
        if self.group is not None:
            _write(self.group / "cgroup.procs", "0")  # "0": the writing process itself
        elif self.limit_mb is not None:
            limit = self.limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def pids(self) -> list[int]:
        if self.group is None:
            return []
        return [int(p) for p in _read(self.group / "cgroup.procs").split() if p.isdigit()]

    def kill(self) -> None:
        """SIGKILL every process in the group (those that left their session included)."""
        if self.group is None:
            return
        if (self.group / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.group / "cgroup.kill", "1")
        deadline = time.monotonic() + 10
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended a process of the group for its memory limit."""
        if self.group is None:
            return False
        if self.mechanism == CGROUP_V2:
            return _counter(_read(self.group / "memory.events"), "oom_kill") > 0
        return _counter(_read(self.group / "memory.oom_control"), "oom_kill") > 0

    def peak_mb(self) -> float | None:
        """The group's peak memory, where the kernel reports it."""
        if self.group is None:
            return None
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            text = _read(self.group / name).strip()
            if text.isdigit():
                return round(int(text) / 2**20, 1)
        return None

    def close(self) -> None:
        """Kill what is left and remove the group."""
        if self.group is None:
            return
        self.kill()
        for _ in range(100):
            try:
                self.group.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)

    def describe(self) -> dict[str, object]:
        return {"memory_limit_mb": self.limit_mb, "memory_limit": self.mechanism}
