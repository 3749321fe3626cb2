"""The parent's side of a child process: start it, pump its output, end it, read what it left.

Everything that comes from the child is bounded and checked before use: its output is read in
chunks (the log is capped per byte, also inside one enormous line), its JSON files are size-capped
and schema-checked (anything else is a reason for a failed record, never an exception that stops
the queue), and the wait ends at the timeout or at a stop request (SIGINT, SIGTERM, SIGHUP), when
the whole process tree is killed.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import math
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.cost import check_reported
from medbench.errors import Interrupted
from medbench.limits import ProcessTree

Event = Callable[[dict[str, Any]], None]
LOG_LIMIT = 20 * 2**20  # bytes of child output kept in child.log; the rest is counted, not kept
LINE_LIMIT = 64 * 2**10  # a longer line is logged as it streams, never parsed as an event
TAIL_LINES = 40
TAIL_WIDTH = 500
JSON_LIMIT = 64 * 2**10  # child-result.json / child-error.json
_CHUNK = 1 << 16
_SIGNALS = set(signal.Signals._value2member_map_)
_POLL_S = 0.1

# --- stop requests -------------------------------------------------------------------------------

_stop = threading.Event()
_stop_reason: list[str] = []
_stop_signal: list[int] = []


def request_stop(reason: str, signum: int | None = None) -> None:
    """Ask every run in this process to stop: children are killed, no record is written."""
    _stop_reason[:] = [reason]
    _stop_signal[:] = [signum] if signum is not None else []
    _stop.set()


def clear_stop() -> None:
    _stop.clear()
    _stop_reason.clear()
    _stop_signal.clear()


def stop_exit_code() -> int:
    """The shell's exit code for the signal that stopped the runs (128 + its number), else 1."""
    return 128 + _stop_signal[0] if _stop_signal else 1


def stop_reason() -> str | None:
    return (_stop_reason[0] if _stop_reason else "a stop request") if _stop.is_set() else None


def check_stop() -> None:
    """Raise :class:`Interrupted` if a stop was requested."""
    if (reason := stop_reason()) is not None:
        raise Interrupted(reason)


@contextlib.contextmanager
def stop_on_signals(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
    """In the main thread: each of ``signals`` requests a stop (and a second SIGINT raises)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if signum == signal.SIGINT and _stop.is_set():
            raise KeyboardInterrupt
        request_stop(f"stopped by {signal.Signals(signum).name}", signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --- output --------------------------------------------------------------------------------------


class ChildOutput:
    """Read the child's merged stdout/stderr: keep a bounded log, a tail, and forward events."""

    def __init__(self, stream, log_path: Path, on_event: Event | None) -> None:
        from medbench.child import EVENT

        self._event = EVENT.encode()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.dropped = 0
        self._written = 0
        self._stream, self._log_path, self._on_event = stream, log_path, on_event
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        line = bytearray()
        long_line = False  # the current line passed LINE_LIMIT: it streams into the log
        with open(self._log_path, "ab") as self._log:
            while chunk := self._read():
                pieces = chunk.split(b"\n")
                for i, piece in enumerate(pieces):
                    ends = i < len(pieces) - 1
                    if long_line:
                        self._keep(piece + (b"\n" if ends else b""))
                    else:
                        line += piece
                        if len(line) > LINE_LIMIT:
                            long_line = True
                            self.tail.append(
                                line[:TAIL_WIDTH].decode("utf-8", "replace") + " [...]"
                            )
                            self._keep(bytes(line) + (b"\n" if ends else b""))
                            line.clear()
                        elif ends:
                            self._line(bytes(line))
                            line.clear()
                    if ends:
                        long_line = False
            if line:
                self._line(bytes(line), newline=False)
            if self.dropped:
                self._log.write(
                    f"\n[medbench: {self.dropped} more bytes of output not kept]\n".encode()
                )

    def _read(self) -> bytes:
        try:
            return self._stream.read1(_CHUNK)
        except (OSError, ValueError):
            return b""

    def _line(self, raw: bytes, *, newline: bool = True) -> None:
        if raw.startswith(self._event):
            if self._on_event:
                try:
                    event = json.loads(raw[len(self._event) :])
                    if isinstance(event, dict):
                        self._on_event(event)
                except Exception:  # a progress bar must not kill a run
                    pass
            return
        self.tail.append(raw[:TAIL_WIDTH].decode("utf-8", "replace").rstrip("\r"))
        self._keep(raw + (b"\n" if newline else b""))

    def _keep(self, data: bytes) -> None:
        room = LOG_LIMIT - self._written
        if room > 0:
            self._log.write(data[:room])
            self._log.flush()  # so `tail -f child.log` follows a run line by line
            self._written += min(room, len(data))
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        return "\n".join(self.tail)


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildExit:
    code: int | None  # None: the harness ended it (timeout)
    reason: str  # why the harness ended it or what killed it; "" for a normal exit
    tail: str
    peak_memory_mb: float | None


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel kills this process when the runner's thread dies."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def run_child(
    argv: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    timeout: float | None,
    tree: ProcessTree,
    on_event: Event | None,
    shell_style_signals: bool = False,
) -> ChildExit:
    """Run ``argv`` in its own session and in ``tree``; wait for it, the timeout or a stop.

    ``shell_style_signals``: ``argv`` (bwrap) reports a child killed by a signal as 128 + N.
    """
    check_stop()

    def preexec() -> None:
        tree.enter()
        _die_with_parent()

    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=preexec,
    )
    output = ChildOutput(proc.stdout, log_path, on_event)
    deadline = None if timeout is None else time.monotonic() + timeout
    reason = ""
    try:
        while True:
            try:
                code: int | None = proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            check_stop()
            if deadline is not None and time.monotonic() > deadline:
                _kill(proc, tree)
                code, reason = None, f"timed out after {timeout:g} s (the child was killed)"
                break
    except BaseException:
        _kill(proc, tree)
        output.thread.join(timeout=10)
        raise
    if code is not None and code > 128 and shell_style_signals and code - 128 in _SIGNALS:
        code = 128 - code  # bwrap reports a child killed by signal N as exit code 128 + N
    if code != 0 and tree.oom_killed():  # whichever process it hit, the run failed for it
        reason = (
            f"the run's processes exceeded its memory limit of {tree.limit_mb} MiB together: the "
            f"kernel's OOM killer ended one ({tree.mechanism})"
        )
    tree.kill()  # anything it left behind (in the sandbox the PID namespace already ended it)
    output.thread.join(timeout=10)
    return ChildExit(code, reason, output.text(), tree.peak_mb())


def _kill(proc: subprocess.Popen, tree: ProcessTree) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    tree.kill()
    proc.wait()


def signal_name(code: int) -> str:
    number = -code
    return signal.Signals(number).name if number in _SIGNALS else str(number)


# --- the child's files ---------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _cost(value: Any) -> bool:
    check_reported(value)  # raises ValueError saying which number is wrong
    return True


RESULT_SCHEMA: dict[str, Callable[[Any], bool]] = {
    "setup_s": _number,
    "fit_s": _number,
    "predict_s": _number,
    "output_s": _number,
    "child_s": _number,
    "device_name": _text,
    "peak_gpu_memory_mb": lambda v: v is None or _number(v),
    "notes": lambda v: (
        isinstance(v, dict)
        and len(v) <= 20
        and all(isinstance(k, str) and isinstance(x, str) and len(x) <= 500 for k, x in v.items())
    ),
    "cost": _cost,
}
ERROR_SCHEMA: dict[str, Callable[[Any], bool]] = {
    "type": _text,
    "message": _text,
    "medbench_error": lambda v: isinstance(v, bool),
}


def open_regular(path: Path):
    """Open a file the child wrote, refusing anything but a regular file.

    The child can leave a symbolic link there (which the parent would resolve on its own file
    system, outside the sandbox) or a FIFO (opening it would block the parent for ever): neither
    is followed nor opened for waiting (``O_NOFOLLOW | O_NONBLOCK``, then ``fstat``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(
                errno.ELOOP, f"{path.name} is not a regular file (a symbolic link)"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def read_child_json(path: Path, schema: dict[str, Callable[[Any], bool]]) -> dict[str, Any]:
    """The child's JSON file, checked against ``schema`` (every key required, nothing else kept).

    Raises ValueError with the reason when it is missing, too large, not JSON or off-schema.
    """
    try:
        with open_regular(path) as f:
            data = f.read(JSON_LIMIT + 1)
    except FileNotFoundError:
        raise ValueError(f"the child wrote no {path.name}") from None
    except OSError as exc:
        raise ValueError(f"cannot read the child's {path.name}: {exc.strerror or exc}") from None
    if len(data) > JSON_LIMIT:
        raise ValueError(f"the child's {path.name} is larger than {JSON_LIMIT // 1024} KiB")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"the child's {path.name} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"the child's {path.name} is not a JSON object")
    bad, why = [], []
    for key, ok in schema.items():
        try:
            good = key in obj and ok(obj[key])
        except ValueError as exc:  # a check that says what is wrong
            good = False
            why.append(str(exc))
        if not good:
            bad.append(key)
    if bad:
        reasons = f" ({'; '.join(why)})" if why else ""
        raise ValueError(
            f"the child's {path.name} has missing or malformed field(s) {bad}{reasons}"
        )
    return {k: (obj[k][:2000] if isinstance(obj[k], str) else obj[k]) for k in schema}
