"""Run plumbing shared by every command line: output folders, atomic writes, JSON, CSV,
BLAS threads and worker pools.

* :func:`prepare_output` creates an output folder and checks that it is writable before
  any work starts (a bad ``--out`` is an :class:`OutputError`, one line), refuses a
  non-empty run folder unless asked to resume or overwrite, and cleans what an earlier
  killed run left behind (:func:`clean_stale`).
* :func:`atomic_write` replaces one file atomically (temporary file + ``os.replace``);
  :func:`publish_set` replaces a *set* of files (a figure's csv/png/json) so that no
  reader ever mixes files of two runs after recovery: the files are written into a
  hidden staging folder, a ``COMMITTED`` marker is written last, then the files are
  renamed into place. A run killed before the marker leaves the old set untouched (the
  staging folder is deleted by the next run); one killed between the renames is
  completed (rolled forward) by the next run.
* :func:`to_jsonable` / :func:`format_value` / :func:`format_csv`: the one JSON
  conversion and the one CSV number format (6 significant digits; NaN -> empty).
* :func:`limit_threads` pins BLAS (and torch) threads; :class:`JobPool` /
  :func:`map_jobs` run tasks in worker processes with one BLAS thread each, or as Ray
  tasks (``backend="ray"``, :mod:`isac_gym.ray_backend`).
* :func:`machine_description` and :func:`write_manifest`: the ``manifest.json`` that
  dates a result folder (command, commit, date, machine).

Importing this module is light (standard library only).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from isac_gym.cli import UsageError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
BACKENDS = ("local", "ray")
_SET_SUFFIX = ".set.tmp"
_COMMITTED = "COMMITTED"
_LIMITERS: list = []


class OutputError(UsageError):
    """An output path that cannot be used (a one-line message for the command line)."""


# ----------------------------------------------------------------------------- folders


def prepare_output(
    path: str | Path,
    *,
    option: str = "--out",
    must_be_empty: bool = False,
    overwrite: bool = False,
    owned: Iterable[str] = (),
) -> Path:
    """Create folder ``path``, check that it is writable, clean stale temporaries.

    ``must_be_empty``: refuse a folder that holds anything (a finished or interrupted
    run) unless ``overwrite``, which first removes the entries named in ``owned`` (and
    refuses when there is anything else, so that a wrong ``--out`` never deletes
    foreign files). Errors are :class:`OutputError` naming ``option``.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{option} {path}: exists and is not a folder") from None
    except OSError as error:
        raise OutputError(f"{option} {path}: cannot create the folder ({_reason(error)})") from None
    _check_writable(path, option)
    clean_stale(path)
    entries = sorted(entry.name for entry in path.iterdir())
    if must_be_empty and entries:
        if not overwrite:
            raise OutputError(
                f"{option} {path} is not empty ({', '.join(entries[:4])}"
                f"{', ...' if len(entries) > 4 else ''}); use --resume to continue that run "
                "or --overwrite to replace it"
            )
        _clear(path, entries, set(owned), option)
    return path


def _check_writable(path: Path, option: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(
            dir=path, prefix=_temporary_prefix("write-probe"), suffix=".tmp"
        )
    except OSError as error:
        raise OutputError(f"{option} {path}: not writable ({_reason(error)})") from None
    os.close(handle)
    os.unlink(probe)


def _clear(path: Path, entries: list[str], owned: set[str], option: str) -> None:
    foreign = [name for name in entries if name not in owned]
    if foreign:
        raise OutputError(
            f"{option} {path}: --overwrite refused, it holds files that are not from a run "
            f"({', '.join(foreign[:4])}); remove them or choose another folder"
        )
    for name in entries:
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _temporary_prefix(name: str) -> str:
    """``.name.<pid>.``: temporaries carry their writer's process id."""
    return f".{name}.{os.getpid()}."


def _writer_alive(name: str) -> bool:
    """Whether the process that made temporary ``name`` (see :func:`_temporary_prefix`)
    still runs; False for names without a process id (e.g. from older versions)."""
    parts = name.removesuffix(_SET_SUFFIX).removesuffix(".tmp").split(".")
    if len(parts) < 3 or not parts[-2].isdigit():
        return False
    pid = int(parts[-2])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def clean_stale(folder: str | Path) -> list[Path]:
    """Finish or remove what killed writers left in ``folder``; the paths handled.

    Hidden ``.*.tmp`` files (half-written :func:`atomic_write` targets) are deleted;
    staging folders of :func:`publish_set` are rolled forward when committed, else
    deleted. Temporaries of a process that still runs (another run writing into the
    same folder) are left alone.
    """
    handled = []
    for entry in sorted(Path(folder).glob(".*.tmp")):
        if _writer_alive(entry.name):
            continue  # another run writing into the same folder right now
        if entry.is_dir() and entry.name.endswith(_SET_SUFFIX):
            if (entry / _COMMITTED).is_file():
                _move_into_place(entry, Path(folder))
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file():
            entry.unlink(missing_ok=True)
        else:
            continue
        handled.append(entry)
    return handled


# ----------------------------------------------------------------------------- writes


def atomic_write(path: str | Path, write: Callable[[Any], Any]) -> Path:
    """``write(binary_handle)`` into a hidden temporary next to ``path``, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of ``text`` (UTF-8)."""
    return atomic_write(path, lambda handle: handle.write(text.encode()))


@contextlib.contextmanager
def publish_set(folder: str | Path, name: str) -> Iterator[Path]:
    """Stage files for ``folder`` and publish them together on a clean exit.

    Yields a staging folder: write the set's files there (plain names). On leaving
    the block they replace the files of the same names in ``folder``; on an
    exception nothing is published. See the module docstring for kills.
    """
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=_temporary_prefix(name), suffix=_SET_SUFFIX))
    try:
        yield staging
        for entry in staging.iterdir():
            with open(entry, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(entry, 0o666 & ~_umask())
        marker = staging / f".{_COMMITTED}.tmp"
        marker.write_text("\n")
        os.replace(marker, staging / _COMMITTED)  # the commit point
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, folder: Path) -> None:
    for entry in sorted(staging.iterdir()):
        if entry.name != _COMMITTED and not entry.name.startswith("."):
            os.replace(entry, folder / entry.name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- formats


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays to Python numbers and
    lists, tuples to lists, non-finite floats to ``"nan"``/``"inf"``/``"-inf"``, keys
    to strings, anything else to its ``str``."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalar or array
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def format_value(value: Any) -> str:
    """Deterministic CSV text: 6 significant digits; NaN or None -> empty; inf -> inf."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | bool):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text of ``rows`` (``columns`` default: the first row's keys), ``\\n`` ends.
    Cells are :func:`format_value`; text containing a comma or quote is quoted."""
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    lines = [",".join(_quote(column) for column in columns)]
    for row in rows:
        lines.append(",".join(_quote(format_value(row.get(c, math.nan))) for c in columns))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    if any(char in text for char in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


# ----------------------------------------------------------------------------- threads


def machine_description() -> str:
    """CPU model, core count, numpy version and BLAS (for benchmarks and manifests)."""
    import platform

    import numpy as np

    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    blas = "unknown BLAS"
    with contextlib.suppress(Exception):
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, BLAS {blas}"
    )


def code_commit(root: Path, outputs: str | Path) -> str:
    """The git commit checked out at ``root``, ``+dirty`` with tracked changes outside
    ``outputs`` (a run rewriting its own tracked results does not make the code dirty);
    ``unknown`` outside a checkout."""
    import subprocess

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    outputs, root = Path(outputs).resolve(), Path(root).resolve()
    inside = outputs.is_relative_to(root) and outputs != root
    exclude = [f":(exclude){outputs.relative_to(root)}"] if inside else []
    if commit != "unknown" and git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", *exclude
    ):
        commit += "+dirty"
    return commit


def write_manifest(folder: str | Path, command: str, **extra: Any) -> Path:
    """``folder/manifest.json``: how a result folder was made, so that it can be dated
    and re-made: the ``command``, the git ``commit`` of the code (:func:`code_commit`),
    the UTC ``date``, the ``machine`` and its load average, and ``extra`` (e.g. the wall
    time)."""
    import datetime
    import json

    manifest = {
        "command": command,
        "commit": code_commit(Path(__file__).resolve().parents[1], folder),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **extra,
    }
    text = json.dumps(to_jsonable(manifest), indent=2) + "\n"
    return atomic_write_text(Path(folder) / "manifest.json", text)


def limit_threads(threads: int = 1, *, torch: bool = False):
    """Use ``threads`` BLAS threads in this process (and ``threads`` torch threads when
    ``torch``); child processes inherit ``OMP/OPENBLAS/MKL_NUM_THREADS`` (set only
    where unset). Returns the ``threadpoolctl`` limiter (``unregister()`` restores),
    or None without threadpoolctl.

    The slot solvers work on 64 x 64 matrices, where multi-threaded BLAS is several
    times slower than one thread, and a small MLP gains nothing from more threads.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    if torch:
        import torch as torch_module

        torch_module.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with the dependencies
        return None
    limiter = threadpool_limits(threads)
    _LIMITERS.append(limiter)
    return limiter


class JobPool:
    """Run tasks in this process (``jobs == 1``) or in ``jobs`` spawned worker
    processes with one BLAS (and torch) thread each. A context manager; reuse one pool
    for several :meth:`map` calls to pay the start-up once.

    ``backend``: ``"local"`` (processes on this machine) or ``"ray"`` (Ray tasks on the
    cluster at ``address``, an embedded local Ray when None; ``jobs`` is then unused:
    Ray runs as many tasks at once as the cluster has CPUs). Results are the same.
    """

    def __init__(
        self,
        jobs: int = 1,
        *,
        backend: str = "local",
        torch: bool = False,
        address: str | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if int(jobs) < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs, self.backend, self.torch = int(jobs), backend, torch
        self.address = address
        self._pool = None
        self._limiter = None

    def __enter__(self) -> JobPool:
        if self.backend == "ray":
            from isac_gym import ray_backend

            ray_backend.init(self.address)  # start-up before the work (and its timing)
            return self
        if self.jobs == 1:
            self._limiter = limit_threads(1, torch=self.torch)
            return self
        import functools
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, "1")  # inherited by the spawned workers
        self._pool = ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=functools.partial(limit_threads, 1, torch=self.torch),
        )
        return self

    def __exit__(self, *exc) -> bool:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        if self._limiter is not None:
            self._limiter.unregister()
        return False

    def map(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[Any],
        *,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """``[fn(task) for task in tasks]`` (in task order); ``on_result(index, result)``
        after each finished task (in finishing order). The first error cancels the rest
        and is raised."""
        results: list[Any] = [None] * len(tasks)
        for index, result in self._completed(fn, tasks):
            results[index] = result
            if on_result is not None:
                on_result(index, result)
        return results

    def _completed(self, fn, tasks) -> Iterator[tuple[int, Any]]:
        if self.backend == "ray":
            from isac_gym import ray_backend

            yield from enumerate(ray_backend.ray_map(fn, tasks, self.address))
            return
        if self._pool is None:
            for index, task in enumerate(tasks):
                yield index, fn(task)
            return
        from concurrent.futures import as_completed

        futures = {self._pool.submit(fn, task): index for index, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def map_jobs(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    jobs: int = 1,
    *,
    progress: bool | str = False,
    unit: str = "task",
    backend: str = "local",
    address: str | None = None,
    torch: bool = False,
    pool: JobPool | None = None,
) -> list[Any]:
    """``[fn(task) for task in tasks]`` over ``jobs`` workers (:class:`JobPool`), with a
    tqdm bar when ``progress`` (a string is the bar's title). ``pool``: an open pool
    to reuse (then ``jobs``, ``backend``, ``address`` and ``torch`` are the pool's)."""
    from tqdm.auto import tqdm

    title = progress if isinstance(progress, str) else None
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(JobPool(jobs, backend=backend, torch=torch, address=address))
        bar = stack.enter_context(
            tqdm(total=len(tasks), desc=title, unit=unit, disable=not progress, file=sys.stderr)
        )
        return pool.map(fn, tasks, on_result=lambda index, result: bar.update(1))
