"""The sandbox a run's child executes in: bubblewrap (``bwrap``, the tool Flatpak uses).

The child gets new user, mount, PID, IPC, UTS and network namespaces, no capabilities, its own
session, and ``--die-with-parent``. Its file system is built from nothing: read-only the system
(``/usr`` and its links), the Python environment and medbench itself, the submission's snapshot
and the run's input files (train/val arrays, test images, opaque case tables, the job); writable
only the run's ``work`` and ``output`` folders and a private ``/tmp``. Not there: the test labels
(``MEDBENCH_HOME/answers``), the rest of ``MEDBENCH_HOME``, the raw data, the results folder, the
user's home, the network. ``/dev/nvidia*`` (and ``/sys``, read-only) are added on CUDA devices.

The child is PID 1's only descendant line in its PID namespace: when it ends, when the runner
kills the sandbox, or when the runner dies (by any signal), every process it started ends too.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medbench.errors import MedbenchError

ISOLATIONS = ("sandbox", "none")
ROOT = "/medbench"  # where the run's files appear inside the sandbox
# System folders bound read-only (or re-created as the same symbolic links) when present.
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Single files of /etc that programs read at start-up; no secrets among them.
_ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/alternatives",
)
# The parent's environment is not the child's: only these pass (no tokens, no MEDBENCH_DATA).
PASS_ENV = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
)
INSTALL_HINT = (
    "install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
    "`sudo dnf install bubblewrap` (Fedora), `sudo pacman -S bubblewrap` (Arch); "
    "macOS has none (runs are unsandboxed there)"
)


@dataclass(frozen=True)
class Probe:
    """Whether bubblewrap works here: its path and version, or why not."""

    path: str | None
    version: str | None
    problem: str | None

    @property
    def works(self) -> bool:
        return self.problem is None


@functools.cache
def probe() -> Probe:
    """Find ``bwrap`` and start one trivial sandbox with the namespaces runs use."""
    if not sys.platform.startswith("linux"):
        return Probe(None, None, f"bubblewrap needs Linux; this is {sys.platform}")
    path = shutil.which("bwrap")
    if path is None:
        return Probe(None, None, "bubblewrap (bwrap) is not installed")
    try:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        trial = subprocess.run(
            [path, *_base_args(), *_system_args(), "--", "/bin/true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Probe(path, None, f"bwrap could not be started: {exc}")
    if trial.returncode != 0:
        why = " ".join(trial.stderr.split())[:300] or f"exit code {trial.returncode}"
        return Probe(
            path,
            version,
            f"bwrap cannot make a sandbox here ({why}); user namespaces may be disabled "
            "(sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)",
        )
    return Probe(path, version or "bubblewrap", None)


def resolve_isolation(requested: str | None) -> tuple[str, str | None]:
    """(isolation to use, a warning to show or None). ``None`` asks for the default."""
    if requested is not None and requested not in ISOLATIONS:
        raise MedbenchError(f"--isolation must be sandbox or none; got {requested!r}")
    found = probe()
    if requested == "sandbox" and not found.works:
        raise MedbenchError(f"--isolation sandbox: {found.problem}; {INSTALL_HINT}")
    if requested is None and not found.works:
        return "none", (
            f"runs are NOT sandboxed: {found.problem}. A submission can then read the test "
            f"labels and anything else this user can; its records are marked. To fix: {INSTALL_HINT}"
        )
    return requested or "sandbox", None


def _base_args() -> list[str]:
    return [
        "--unshare-all",  # user, mount, PID, IPC, UTS, network (and cgroup where possible)
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "medbench",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]


def _system_args() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC:
        args += ["--ro-bind-try", path, path]
    return args


def python_roots() -> list[str]:
    """Folders the child's Python needs: the interpreter's prefixes, site-packages, medbench.

    Never the working directory or other ``sys.path`` entries: the current folder may hold the
    results (records list per-case truth) and anything else of the user's.
    """
    import medbench

    candidates = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        str(Path(medbench.__file__).resolve().parents[1]),
        str(Path(sys.executable).resolve().parent),
    }
    candidates |= {
        p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))
    }
    real = sorted({os.path.realpath(p) for p in candidates if p and os.path.isdir(p)})
    roots: list[str] = []
    for p in real:  # drop folders inside another one already bound
        if not any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(p)
    # The un-resolved prefixes too (a venv's bin/python is a link into the base prefix).
    extra = {
        p
        for p in (sys.prefix, str(Path(sys.executable).parent))
        if os.path.isdir(p) and os.path.realpath(p) != p
    }
    return roots + sorted(extra)


def child_env(workdir: str) -> dict[str, str]:
    """The sandboxed child's environment: the passed variables, caches and HOME in ``workdir``."""
    import medbench

    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.update(
        {
            # The child imports the medbench the parent runs (bound read-only), whichever way it
            # was installed or put on the path.
            "PYTHONPATH": str(Path(medbench.__file__).resolve().parents[1]),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",  # the snapshot is read-only; nothing to cache
            "HOME": workdir,
            "TMPDIR": "/tmp",
            "XDG_CACHE_HOME": f"{workdir}/.cache",
            "MPLCONFIGDIR": f"{workdir}/.config/matplotlib",
        }
    )
    return env


def command(
    argv: list[str],
    *,
    read_only: dict[str, Path],
    writable: dict[str, Path],
    cuda: bool,
    chdir: str,
) -> list[str]:
    """The bwrap command line running ``argv`` with ``read_only``/``writable`` {inside: outside}."""
    found = probe()
    if not found.works:
        raise MedbenchError(f"the sandbox is not available: {found.problem}; {INSTALL_HINT}")
    args = [found.path or "bwrap", *_base_args(), *_system_args()]
    for root in python_roots():
        args += ["--ro-bind", root, root]
    for inside, outside in sorted(writable.items()):
        args += ["--bind", str(outside), inside]
    for inside, outside in sorted(read_only.items()):
        args += ["--ro-bind", str(outside), inside]
    if cuda:
        for dev in sorted(glob.glob("/dev/nvidia*")):
            args += ["--dev-bind", dev, dev]
        args += ["--ro-bind", "/sys", "/sys"]
    args += ["--chdir", chdir, "--", *argv]
    return args
