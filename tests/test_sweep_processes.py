"""A killed or terminated joblib sweep leaves no workers computing and no /dev/shm folders.

Each test starts a sweep of slow cells (each sleeps 60 s) in a subprocess, waits until both
workers are inside a cell (each writes its pid to a file), then kills or terminates the sweep.
Linux only (/proc, /dev/shm); each takes a few seconds (loky starts its workers in ~1-2 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc and /dev/shm (Linux)"
)

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from simulations.sweep import run_grid

    def slow(cell):
        open(os.path.join(sys.argv[1], f"pid{os.getpid()}"), "w").close()
        time.sleep(60)
        return [{"i": cell["i"]}]

    run_grid(slow, [{"i": i} for i in range(4)], sys.argv[2], backend="joblib", n_jobs=2,
             progress=False)
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie, state Z, has finished: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(tmp_path):
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    script = tmp_path / "sweep_script.py"
    script.write_text(SCRIPT)
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(pids_dir), str(tmp_path / "out")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30  # interpreter + loky start: ~2-5 s on the 2-core machine
    while time.monotonic() < deadline:
        workers = [int(p.name[3:]) for p in pids_dir.glob("pid*")]
        if len(workers) == 2:
            return proc, workers
        if proc.poll() is not None:
            pytest.fail(f"the sweep exited early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the workers did not start within 30 s")


def _wait_gone(pids, seconds=5.0):
    """The workers' watchdog polls every 0.2 s; 5 s leaves room for a loaded machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _shm_folders() -> set:
    return set(Path("/dev/shm").glob("joblib_memmapping_folder_*"))


def test_sigkill_of_the_sweep_ends_its_workers(tmp_path):
    proc, workers = _start(tmp_path)
    assert all(_alive(p) for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    left = _wait_gone(workers)
    for p in left:  # do not leave them behind if the test fails
        os.kill(p, signal.SIGKILL)
    assert left == [], f"workers still running 5 s after the sweep was killed: {left}"


def test_sigterm_unwinds_stops_workers_and_leaves_no_shm_folder(tmp_path):
    before = _shm_folders()
    proc, workers = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the sweep did not exit within 15 s of SIGTERM")
    left = _wait_gone(workers)
    for p in left:  # (before reading stderr: live workers would hold the pipe open)
        os.kill(p, signal.SIGKILL)
    assert left == []
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in proc.stderr.read().decode()  # unwound, not killed outright
    assert _shm_folders() - before == set()
