"""Worker groups: one coordinator and ``k`` worker processes that train a data-parallel fit together.

Rules: this module imports no framework. Workers are fresh interpreters
(``python -m backends._workers``, so no user ``__main__`` is re-imported), each
with ``REGBENCH_WORKER=<rank>`` in its environment and one end of a
multiprocessing Pipe: that pipe carries control messages only (start, "call
this method", the reply); training data and gradients travel through the
framework's own collectives inside the workers. Every wait has a timeout. A
worker that dies (a signal, the OOM killer, an exit) closes its end of the
pipe, so the coordinator's current call raises ``WorkerError`` at once, naming
the rank and its exit status, and the whole group is stopped: no worker
outlives a failed call, a closed group or its coordinator (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from backends._core import proc_kib

#: Seconds a group may take to start: interpreters, framework imports and the rendezvous
#: (~3 s on an idle 2-core machine; a loaded one takes several times that).
START_TIMEOUT_S = 180.0
#: Seconds one call (one training run, say) may take before the group is declared hung.
CALL_TIMEOUT_S = 1800.0
#: Seconds a stopping worker gets to leave cleanly before SIGTERM, and then SIGKILL.
STOP_GRACE_S = 5.0
#: The environment variable naming a worker's rank, set in every worker process.
RANK_ENV = "REGBENCH_WORKER"
#: The environment variable naming the group's private folder (for a rendezvous file, say).
TMP_ENV = "REGBENCH_DP_TMP"
#: Test hook: ``"<rank>:exit-before-init"`` makes that worker exit with status 3 before its rendezvous.
FAULT_ENV = "REGBENCH_DP_FAULT"
#: Seconds a failure waits for its root cause to show (a worker that died rather than one that saw it die).
FAULT_SETTLE_S = 1.0
#: Lines of a failed worker's captured output quoted in the error.
TAIL_LINES = 12


class WorkerError(RuntimeError):
    """A worker died, failed or timed out; ``rank`` says which (None when the whole group timed out)."""

    def __init__(self, message: str, rank: int | None = None) -> None:
        super().__init__(message)
        self.rank = rank


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it, so two groups never choose alike)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous ``[start, stop)`` ranges covering ``range(n)``; the first ``n % k`` are one longer."""
    if k < 1:
        raise ValueError(f"workers must be positive, got {k}")
    base, extra = divmod(n, k)
    bounds, start = [], 0
    for rank in range(k):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        hint = " (the out-of-memory killer sends it too)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


class WorkerGroup:
    """``world`` worker processes, each running one ``factory(rank, world, payload)`` object.

    ``call(method, args_by_rank)`` runs that method on every worker at once and
    returns their replies in rank order. ``close()`` stops the group; it is
    idempotent, and also runs when the group is garbage-collected or the
    interpreter exits.
    """

    def __init__(
        self,
        factory: str,
        payloads: Sequence[Any],
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.factory = factory  # "module:callable", imported in the workers only
        self.world = len(payloads)
        self._procs: list[subprocess.Popen] = []
        self._conns: list[multiprocessing.connection.Connection] = []
        self._logs: list[Path] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="regbench-dp-")
        self.closed = False
        self._graceful = [True]  # a failed group is not asked to stop: its survivors may sit in a collective
        # The finalizer holds the processes, not the group: it runs when the group is collected, or at exit.
        self._finalizer = weakref.finalize(self, _stop, self._procs, self._conns, self._tmp, self._graceful)
        try:
            self._start(payloads, dict(env or {}), start_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def tmpdir(self) -> str:
        """A private folder of the group, removed with it (for a FileStore, say)."""
        return self._tmp.name

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def _start(self, payloads: Sequence[Any], env: dict[str, str], timeout_s: float) -> None:
        base_env = {**os.environ, **env, TMP_ENV: self.tmpdir}
        # The workers find this package wherever the coordinator found it.
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, (_package_root(), os.environ.get("PYTHONPATH"))))
        for rank in range(self.world):
            parent, child = multiprocessing.Pipe(duplex=True)
            log = Path(self.tmpdir) / f"worker{rank}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "backends._workers", str(child.fileno()), str(os.getpid())],
                    env={**base_env, RANK_ENV: str(rank)},
                    pass_fds=(child.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            child.close()  # the worker holds its end now: its death reads as EOF here
            self._procs.append(proc)
            self._conns.append(parent)
            self._logs.append(log)
        for rank, conn in enumerate(self._conns):
            conn.send(("init", self.factory, rank, self.world, payloads[rank]))
        self._gather("start", timeout_s)

    def call(self, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> list[Any]:
        """Run ``method(*args)`` on every worker; their return values in rank order."""
        if self.closed:
            raise WorkerError("the worker group is closed")
        for rank, conn in enumerate(self._conns):
            try:
                conn.send(("call", method, args))
            except OSError:
                self._fail(rank, f"during '{method}'")
        return self._gather(method, timeout_s)

    def _gather(self, what: str, timeout_s: float) -> list[Any]:
        replies: dict[int, Any] = {}
        deadline = time.monotonic() + timeout_s
        waiting = dict(enumerate(self._conns))
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                late = sorted(waiting)
                self._graceful[0] = False
                self.close()
                raise WorkerError(f"worker group timed out after {timeout_s:g} s in '{what}': no reply from "
                                  f"rank(s) {late}", rank=late[0])  # fmt: skip
            for conn in multiprocessing.connection.wait(list(waiting.values()), timeout=left):
                rank = self._conns.index(conn)
                try:
                    status, value = conn.recv()
                except (EOFError, OSError):
                    self._fail(rank, f"during '{what}'")
                if status == "error":
                    self._fail(rank, f"during '{what}'", report=value)
                replies[rank] = value
                del waiting[rank]
        return [replies[rank] for rank in range(self.world)]

    def _fail(self, rank: int, what: str, report: str | None = None) -> NoReturn:
        """Stop the group and raise, naming the root cause.

        When one worker dies its peers fail too, in their next collective, and
        may report first: a worker that died without a word (killed, exited) is
        the cause, so the others get FAULT_SETTLE_S to show whether one did.
        """
        reports = {rank: report} if report is not None else {}
        deadline = time.monotonic() + FAULT_SETTLE_S
        while True:
            for other, conn in enumerate(self._conns):
                with contextlib.suppress(EOFError, OSError):
                    if other not in reports and conn.poll(0) and (message := conn.recv())[0] == "error":
                        reports[other] = message[1]
            silent = [r for r, p in enumerate(self._procs) if p.poll() is not None and r not in reports]
            if silent or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        cause = silent[0] if silent else rank
        proc = self._procs[cause]
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # a dead worker's status is there at once; a failing one is leaving
        message = f"worker rank {cause} (pid {proc.pid}) {describe_exit(proc.returncode)} {what}"
        if cause in reports:
            message += f"; it reported:\n{reports[cause].rstrip()}"
        for other in sorted(set(reports) - {cause}):
            message += f"\nthen rank {other} failed: {reports[other].strip().splitlines()[-1]}"
        if tail := self._tail(cause):
            message += f"\nrank {cause}'s last output:\n{tail}"
        self._graceful[0] = False
        self.close()
        raise WorkerError(message, rank=cause)

    def _tail(self, rank: int) -> str:
        try:
            lines = self._logs[rank].read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(f"  [rank {rank}] {line}" for line in lines[-TAIL_LINES:])

    def close(self) -> None:
        """Stop every worker (asked, then terminated, then killed) and release the group's files."""
        self.closed = True
        self._finalizer()

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(procs: list[subprocess.Popen], conns: list, tmp: tempfile.TemporaryDirectory, graceful: list[bool]) -> None:
    if graceful[0]:
        for conn in conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
    deadline = time.monotonic() + (STOP_GRACE_S if graceful[0] else 2.0)  # to leave, or to be reaped once killed
    # A failed group's survivors may sit in a collective, and JAX's handle SIGTERM themselves: kill at once.
    for sig in (None, signal.SIGTERM, signal.SIGKILL) if graceful[0] else (signal.SIGKILL,):
        for proc in procs:
            if proc.poll() is None and sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        if all(proc.poll() is not None for proc in procs):
            break
        deadline = time.monotonic() + 2.0
    for conn in conns:
        conn.close()
    tmp.cleanup()


# --- the worker side ----------------------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, so no worker is ever orphaned."""
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        pr_set_pdeathsig = 1
        ctypes.CDLL(libc_name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def vm_hwm_bytes() -> int | None:
    """This process's peak resident size (VmHWM), None where /proc is absent."""
    try:
        return proc_kib("/proc/self/status", "VmHWM") * 1024
    except OSError:
        return None


def _serve(fd: int, parent_pid: int) -> int:
    _die_with_parent(parent_pid)
    conn = multiprocessing.connection.Connection(fd)
    rank = int(os.environ[RANK_ENV])
    worker = None
    try:
        _, factory, rank, world, payload = conn.recv()
        if os.environ.get(FAULT_ENV) == f"{rank}:exit-before-init":
            return 3
        module, name = factory.split(":")
        worker = getattr(importlib.import_module(module), name)(rank, world, payload)
        conn.send(("ok", None))
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return 0
            _, method, args = message
            conn.send(("ok", getattr(worker, method)(*args)))
    except EOFError:
        return 0  # the coordinator is gone: nothing left to do
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
        return 1
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


# --- a data-parallel fit, seen from the coordinator ---------------------------------------------------------------

#: All-reduces timed by ``measure_allreduce`` when no count is given.
ALLREDUCE_ROUNDS = 200


def loopback_interface() -> str | None:
    """The name of the loopback interface ("lo" on Linux), None where it cannot be found."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((name for name in names if name == "lo" or name.startswith("lo")), None)


def shard_payloads(problem: Any, config: Any, **common: Any) -> list[dict[str, Any]]:
    """What each worker needs: its contiguous shard of x and y in the working dtype, and the run's settings.

    ``counts`` (every rank's shard length) lets a worker pad its shard to the
    longest one where its framework needs equal shapes.
    """
    dtype = np.dtype(config.dtype)
    x = problem.x.astype(dtype).ravel()
    y = problem.y.astype(dtype).ravel()
    bounds = shard_bounds(problem.n, config.workers)
    counts = [stop - start for start, stop in bounds]
    return [
        {"x": np.ascontiguousarray(x[start:stop]), "y": np.ascontiguousarray(y[start:stop]), "counts": counts,
         "w0": problem.w0, "b0": problem.b0, "lr": config.lr, "epochs": config.epochs, "dtype": config.dtype,
         **common}
        for start, stop in bounds
    ]  # fmt: skip


class DataParallelFit:
    """A PreparedFit whose training runs on a persistent WorkerGroup.

    The group starts in the first ``run()`` (process launch, rendezvous and any
    compilation count in the first call, as a compile does elsewhere) and stays
    up for every later run until ``close()``. ``run()`` is one complete training
    on every worker, from the "go" until rank 0's result is back: ``(w, b,
    losses, final_loss)`` as host values. Use it as a context manager, or call
    ``close()``; a fit that is collected or outlived by the interpreter is
    closed too.
    """

    def __init__(self, factory: str, payloads: list[dict[str, Any]], env: Mapping[str, str] | None = None) -> None:
        self.factory = factory
        self.workers = len(payloads)
        self._payloads: list[dict[str, Any]] | None = payloads
        self._env = dict(env or {})
        self.group: WorkerGroup | None = None

    def _group(self) -> WorkerGroup:
        if self.group is None:
            if self._payloads is None:
                raise WorkerError("this data-parallel fit is closed")
            self.group = WorkerGroup(self.factory, self._payloads, self._env)
            self._payloads = None  # the workers hold the shards now
        return self.group

    def run(self) -> tuple[float, float, np.ndarray, float]:
        return self._group().call("train")[0]

    def result(self, raw: Any) -> Any:
        from backends._core import FitResult  # not at import: _core is light, but keep this module standalone

        return FitResult.from_arrays(*raw)

    def measure_allreduce(self, rounds: int = ALLREDUCE_ROUNDS) -> float:
        """Seconds of one all-reduce of an epoch's parts (loss, ∂w, ∂b) inside this group (rank 0's mean)."""
        return self._group().call("measure_allreduce", rounds)[0]

    def worker_peak_bytes(self) -> int | None:
        """The largest peak resident size (VmHWM) of any worker so far."""
        peaks = [p for p in self._group().call("peak_bytes") if p is not None]
        return max(peaks) if peaks else None

    def bench_info(self) -> dict[str, Any]:
        """What a benchmark records beside the timings: worker count, all-reduce cost, the workers' peak memory."""
        return {
            "workers": self.workers,
            "allreduce_s": self.measure_allreduce(),
            "allreduce_rounds": ALLREDUCE_ROUNDS,
            "worker_peak_bytes": self.worker_peak_bytes(),
        }

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (empty before the first run)."""
        return self.group.pids if self.group is not None else []

    def close(self) -> None:
        self._payloads = None
        if self.group is not None:
            self.group.close()

    def __enter__(self) -> DataParallelFit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), int(sys.argv[2])))
