"""The parent's reader of a child's output: the run folder's child.log follows the run live."""

from __future__ import annotations

import os
import time

from medbench.child import EVENT
from medbench.supervise import ChildOutput as _ChildOutput


def wait_for(predicate, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_child_log_has_each_line_while_the_child_still_runs(tmp_path):
    read_end, write_end = os.pipe()
    log = tmp_path / "child.log"
    events = []
    output = _ChildOutput(os.fdopen(read_end, "rb"), log, events.append)
    writer = os.fdopen(write_end, "wb", buffering=0)
    try:
        writer.write(b"epoch 1/40 loss 0.9\n")
        # The pipe stays open (the child is still training): the line must already be on disk.
        assert wait_for(lambda: log.exists() and b"epoch 1/40" in log.read_bytes())
        writer.write(f'{EVENT}{{"epoch": 1}}\n'.encode())
        assert wait_for(lambda: events == [{"epoch": 1}])
    finally:
        writer.close()
        output.thread.join(timeout=10)
    assert log.read_bytes() == b"epoch 1/40 loss 0.9\n"  # events are forwarded, not logged
    assert output.text() == "epoch 1/40 loss 0.9"
