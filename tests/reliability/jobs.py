"""Running ``speechkit`` commands as killable processes, cheaply.

Each command runs in a process forked from a forkserver that imported torch, transformers and speechkit once, so a
run costs its own work, not 5 s of imports. :func:`kill_when` SIGKILLs a run at a point chosen by a predicate on its
outputs plus a random delay: the job dies wherever it happens to be (inside a torch.save, between two files, ...).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

_CTX = None


def _context():
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["torch", "transformers", "numpy", "speechkit.cli.main", "speechkit.cli.train",
                                     "speechkit.train.ulm", "speechkit.train.vocoder", "speechkit.train.kmeans",
                                     "speechkit.metrics.folder", "speechkit.train.hubert"])
    return _CTX


def _child(argv: list[str], log: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    import torch

    torch.set_num_threads(1)
    from speechkit.cli.main import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def start(argv: list[str], log: Path, env: dict[str, str] | None = None):
    p = _context().Process(target=_child, args=(list(argv), str(log), dict(env or {})))
    p.start()
    return p


def run(argv: list[str], log: Path, timeout: float = 300, env: dict[str, str] | None = None) -> int:
    """Runs ``speechkit argv`` to the end; returns its exit code (output appended to ``log``)."""
    p = start(argv, log, env)
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise TimeoutError(f"speechkit {' '.join(argv)} ran past {timeout} s; see {log}")
    return p.exitcode


def kill_when(argv: list[str], log: Path, ready: Callable[[], bool], rng: random.Random, max_delay: float = 0.5,
              timeout: float = 300, env: dict[str, str] | None = None) -> bool:
    """Starts ``speechkit argv``, waits until ``ready()``, sleeps a random delay up to ``max_delay``, SIGKILLs it.

    Returns:
        True when the process was killed, False when it finished first (the kill point fell after the end).
    """
    p = start(argv, log, env)
    end = time.time() + timeout
    while not ready() and p.is_alive() and time.time() < end:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, max_delay))
    if not p.is_alive():
        p.join()
        return False
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended (and the forkserver reaped it) between the check and the kill
        p.join()
        return False
    p.join()
    return p.exitcode == -signal.SIGKILL
