"""How many CPU threads a process computes with (``training.cpu_threads``, ``--threads``), without
torch: the ONNX runtime reads the number here, and ``nerkit.devices.set_cpu_threads`` also gives
it to torch. By default half the cores this process may run on (``default_cpu_threads``; see
``nerkit.devices`` for why not every core), unless ``OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import os

from nerkit.errors import NerkitError

_chosen: int | None = None  # set by set_cpu_threads


def default_cpu_threads() -> int:
    """Half the cores this process may run on (its CPU affinity), shared among the processes of a
    multi-process run on this machine (``LOCAL_WORLD_SIZE``, set by torchrun and accelerate), at
    least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = os.environ.get("LOCAL_WORLD_SIZE", "").strip()
    processes = int(local) if local.isdigit() and int(local) >= 1 else 1
    return max(1, cores // 2 // processes)


def set_cpu_threads(threads: int | None = None) -> int:
    """Record ``threads``, or when None ``OMP_NUM_THREADS`` if set, else ``default_cpu_threads()``;
    returns the number."""
    global _chosen
    if threads is None:
        from_environment = os.environ.get("OMP_NUM_THREADS", "").strip()
        threads = int(from_environment) if from_environment.isdigit() and int(from_environment) >= 1 \
            else default_cpu_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise NerkitError(f"--threads {threads!r}: expected a whole number of CPU threads >= 1")
    _chosen = threads
    return threads


def cpu_threads() -> int:
    """The number recorded by ``set_cpu_threads``, or what it would choose by default."""
    return _chosen if _chosen is not None else set_cpu_threads()

