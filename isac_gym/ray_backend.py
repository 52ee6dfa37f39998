"""Ray as an optional backend: the work of the local process pool, as Ray tasks.

    pip install -e ".[ray]"

* :func:`init` starts an embedded Ray on this machine (no set-up), or joins a running
  cluster: ``address="auto"`` on a node of the cluster, ``"ray://HOST:PORT"`` from
  outside it. A Ray that is already initialised (e.g. by a test) is used as it is.
* :func:`ray_map` runs a module-level function over a list of tasks as Ray tasks and
  returns the results in submission order. Tasks travel in chunks (a few per CPU of
  the cluster), so Ray's per-task cost is paid per chunk; every worker uses one BLAS
  thread (the solvers work on 64 x 64 matrices, where more threads only slow down).
* :func:`add_arguments` / :func:`check_arguments`: the ``--backend local|ray`` and
  ``--ray-address`` options of the command lines.

Results do not depend on the backend: every task carries its own seed (nothing is drawn
from a per-worker generator), so ``--backend ray`` writes the same bytes as ``local``.

Importing this module does not import Ray; a missing Ray raises :class:`RayNotInstalled`
with a one-line message naming the extra.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

BACKENDS = ("local", "ray")
INSTALL_HINT = 'Ray is not installed; install the extra: pip install -e ".[ray]"'
#: Set in every worker before its first task (with threadpoolctl): one BLAS thread.
BLAS_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: Chunks per CPU of the cluster: enough for load balance and a moving progress bar.
CHUNKS_PER_CPU = 4

_REMOTE: dict[str, Any] = {}  # the remote version of _run_chunk, made on first use
_WORKER_LIMITS: list = []  # threadpoolctl limiter of this worker process (kept alive)


class RayNotInstalled(ImportError):
    """``ray`` cannot be imported; the message says how to install the extra."""


def import_ray():
    """The ``ray`` module, or :class:`RayNotInstalled` with :data:`INSTALL_HINT`."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalled(INSTALL_HINT) from None
    return ray


def init(address: str | None = None, num_cpus: int | None = None):
    """Connect to Ray and return the ``ray`` module.

    ``address=None`` starts a new Ray on this machine (``num_cpus`` CPUs, default all;
    a cluster running on the machine is joined only when asked with ``"auto"``) unless
    this process already has one; ``"auto"`` joins the cluster this machine is a node of;
    ``"ray://HOST:PORT"`` joins a remote cluster through Ray Client. Every node must have
    the same version of this package installed: tasks are sent as references to
    module-level functions, which each worker imports.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    import logging

    if address is None:  # "local": a new Ray here, never a cluster found on the machine
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING)
    return ray


def ray_map(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    address: str | None = None,
    progress: Callable[[], Any] | None = None,
    chunksize: int | None = None,
) -> list:
    """``[fn(task) for task in tasks]``, computed by Ray tasks; results in task order.

    ``fn`` must be a module-level function (workers import it by name). ``progress()``
    is called once per finished task (e.g. ``bar.update``). ``chunksize``: tasks per
    Ray task (default: about :data:`CHUNKS_PER_CPU` chunks per CPU of the cluster). An
    exception in a task is raised here (as Ray's ``RayTaskError``, a subclass of the
    original type) after the unfinished chunks are cancelled.
    """
    tasks = list(tasks)
    if not tasks:
        return []
    ray = init(address)
    if chunksize is None:
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        chunksize = math.ceil(len(tasks) / (CHUNKS_PER_CPU * cpus))
    chunks = [tasks[i : i + chunksize] for i in range(0, len(tasks), chunksize)]
    if "run_chunk" not in _REMOTE:
        _REMOTE["run_chunk"] = ray.remote(num_cpus=1)(_run_chunk)
    pending = {_REMOTE["run_chunk"].remote(fn, chunk): index for index, chunk in enumerate(chunks)}
    results: list[list | None] = [None] * len(chunks)
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                results[index] = ray.get(ref)
                for _ in range(len(chunks[index]) if progress else 0):
                    progress()
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [result for chunk in results for result in chunk]


def _run_chunk(fn: Callable[[Any], Any], chunk: list) -> list:
    """Worker side: ``fn`` over one chunk, with one BLAS thread in this process."""
    if not _WORKER_LIMITS:
        for name, value in BLAS_ENV.items():  # read by libraries imported from now on
            os.environ.setdefault(name, value)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _WORKER_LIMITS.append(None)
        else:
            _WORKER_LIMITS.append(threadpool_limits(1))
    return [fn(task) for task in chunk]


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--backend`` and ``--ray-address`` (imports nothing)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: worker processes on this machine (default); ray: Ray tasks, on a Ray "
        "started here or on the cluster of --ray-address, with as many at once as it has "
        'CPUs (--jobs is not used); needs pip install -e ".[ray]"',
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="with --backend ray: join a running cluster, 'auto' on one of its nodes or "
        "ray://HOST:PORT (default: start Ray on this machine)",
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject ``--ray-address`` without ``--backend ray``; a missing Ray exits with
    one line naming the extra (exit code 2)."""
    if args.ray_address is not None and args.backend != "ray":
        parser.error("argument --ray-address: needs --backend ray")
    if args.backend == "ray":
        try:
            import_ray()
        except RayNotInstalled as error:
            parser.exit(2, f"{parser.prog}: error: {error}\n")
