"""Process groups: one coordinator and ``k`` worker processes, each running one object, with a supervisor.

Rules: this module imports no framework, and knows nothing of training (that is
backends._data_parallel). Workers are fresh interpreters (``python -m
backends._process_group``, so no user ``__main__`` is re-imported), each with
``REGBENCH_WORKER=<rank>`` in its environment and one end of a control
connection: it carries control messages only (start, "call this method", the
reply) and, while a worker is busy, its heartbeat. Every wait has a timeout.
Who starts the workers: this module (``torchrun=False``, one node: a
multiprocessing Pipe each, JAX's groups) or torchrun's elastic agent
(``torchrun=True``, torch's groups, one node or many: backends._torchrun), each
of whose workers dials the coordinator's listener (a TCP socket, a fresh key
each group) in place of the pipe; the protocol is the same, and a worker's rank
is torchrun's ``RANK``. A worker that dies (a signal, the OOM killer, an exit)
closes its end of the connection, so the coordinator's current call raises
``WorkerError`` at once, naming the rank and its exit status (torchrun's agent
reports those of its node's workers). A worker that
hangs (stopped by SIGSTOP, say) sends no heartbeat: after ``hang_timeout_s``
(the keyword, else ``$REGBENCH_DP_HANG_TIMEOUT_S``, else 30 s) the call raises
``WorkerError`` naming it, in one line (sooner when a framework's own timeout
fails its peers first: a silent or stopped worker is still the one named).
Either way the whole group is stopped:
no worker outlives a failed call, a closed group or its coordinator
(PR_SET_PDEATHSIG: a worker dies with its agent, the agent with the
coordinator). A group the machine cannot hold (too many workers for its
cores or its available memory) is refused before any process starts. (Over
300 lines: both ends of one protocol, coordinator and worker, read together.)

Across nodes (a ``cluster``, backends._cluster) torchrun's agents start the
workers on every node and the listener is on node 0's rendezvous address; a
worker whose connection closes is lost (its process died, or its node); a
remote worker is named with its node and host.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import json
import multiprocessing.connection
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from backends._cluster import NODE_ENV, Cluster
from backends._memory import available_memory, proc_kib

#: Seconds a group may take to start: interpreters, framework imports and the rendezvous (torch's 2 workers on a
#: busy 2-core machine: ~2 s started here, ~5 s by torchrun's agent; an overloaded one takes several times that).
START_TIMEOUT_S = 180.0
#: Seconds one call (one training run, say) may take before the group is declared hung.
CALL_TIMEOUT_S = 1800.0
#: Seconds a stopping worker gets to leave cleanly before SIGTERM, and then SIGKILL.
STOP_GRACE_S = 5.0
#: The environment variable naming a worker's rank, set in every worker process.
RANK_ENV = "REGBENCH_WORKER"
#: Test hook: ``"<rank>:exit-before-init"`` makes that worker exit with status 3 before its rendezvous.
FAULT_ENV = "REGBENCH_DP_FAULT"
#: Seconds a failure waits for its root cause to show (a worker that died rather than one that saw it die).
FAULT_SETTLE_S = 1.0
#: Seconds a failure waits for torchrun's agent to report how its failed worker ended (its monitor: every 0.5 s).
AGENT_REPORT_S = 5.0
#: Lines of a failed worker's captured output quoted in the error.
TAIL_LINES = 12
#: Seconds between two heartbeats of a busy worker (its control pipe's only traffic besides calls and replies).
BEAT_S = 0.5
#: Seconds without a heartbeat after which a busy worker is declared hung, unless HANG_TIMEOUT_ENV or the
#: ``hang_timeout_s`` keyword says otherwise. Longer than any pause a live worker's interpreter takes (a big
#: compile, a loaded machine), shorter than the frameworks' own collective timeouts (torch: 60 s).
HANG_TIMEOUT_S = 30.0
HANG_TIMEOUT_ENV = "REGBENCH_DP_HANG_TIMEOUT_S"
#: A worker silent this long when another fails is taken for the cause (its peers failed waiting for it).
SILENT_CAUSE_S = 4 * BEAT_S
#: A torchrun-started worker's environment: the coordinator's listener (HOST:PORT) and the group's key (hex).
CONTROL_ENV = "REGBENCH_DP_CONTROL"
KEY_ENV = "REGBENCH_DP_KEY"
#: A dialling worker's handshake and hello may take this long (a stranger on the port gets no longer): SO_RCVTIMEO.
HANDSHAKE_TIMEVAL = struct.pack("ll", 30, 0)
#: Workers per core this process may use, at most: more only adds switching, and each holds a framework.
MAX_WORKERS_PER_CORE = 4


class WorkerError(RuntimeError):
    """A worker died, failed or timed out; ``rank`` says which (None when the whole group timed out)."""

    def __init__(self, message: str, rank: int | None = None) -> None:
        super().__init__(message)
        self.rank = rank


def resolve_hang_timeout(value: float | None = None) -> float:
    """The seconds of silence that make a busy worker hung: ``value``, else $REGBENCH_DP_HANG_TIMEOUT_S, else 30."""
    source = "hang_timeout_s"
    if value is None:
        value, source = os.environ.get(HANG_TIMEOUT_ENV), HANG_TIMEOUT_ENV
        if value is None:
            return HANG_TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not 0 < seconds < float("inf"):
        raise ValueError(f"{source} must be a positive number of seconds, got {value!r}")
    return seconds


def usable_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def check_group_size(world: int, worker_bytes: int, coordinator_bytes: int = 0) -> None:
    """Refuse, before any process starts, a group this machine cannot hold.

    ``worker_bytes`` is one worker's estimated peak (interpreter, framework, its data), ``coordinator_bytes``
    what this process adds for the group (its copies of the shards, say). ValueError, in one line, with the reason.
    """
    cores = usable_cores()
    if world > MAX_WORKERS_PER_CORE * cores:
        raise ValueError(f"workers={world}: at most {MAX_WORKERS_PER_CORE} per core on the {cores} core(s) this "
                         f"process may use, so at most {MAX_WORKERS_PER_CORE * cores}")  # fmt: skip
    need = world * worker_bytes + coordinator_bytes
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(f"workers={world}: the group needs ~{need / 2**30:.3g} GiB (~{worker_bytes / 2**20:.0f} MiB "
                         f"a worker), more than the {free / 2**30:.3g} GiB of memory available")  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` ("" for every interface) that was free a moment ago (the OS picks it, so two groups
    never choose alike)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        hint = " (the out-of-memory killer sends it too)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


def process_state(pid: int) -> str:
    """The state letter of a process in /proc (R, S, D, T for stopped, t for traced...), "" where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _with_package(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` whose PYTHONPATH finds this package wherever this process found it."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, (_package_root(), env.get("PYTHONPATH"))))}


class _Peer:
    """A worker torchrun started, as the coordinator knows it: its hello (pid, node, host) and its connection.

    Stands where a local worker's Popen does (``pid``, ``poll``, ``wait``, ``send_signal``). Its process can be
    watched and signalled where it runs on this host; elsewhere its connection's end (EOF) is its death.
    ``exitcode``: how it ended, as its node's agent reported it (None while unknown). ``where``: its node and
    host, named across nodes only.
    """

    def __init__(self, conn: multiprocessing.connection.Connection, pid: int, node: int, host: str,
                 nnodes: int) -> None:  # fmt: skip
        self.conn, self.pid, self.node, self.host = conn, pid, node, host
        self.local = host == socket.gethostname()
        self.where = f" on node {node}, host {host}" if nnodes > 1 else ""
        self.lost_at: float | None = None  # when the coordinator found it gone (monotonic)
        self.exitcode: int | None = None

    @property
    def lost(self) -> bool:
        return self.lost_at is not None

    def mark_lost(self) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()

    def poll(self) -> int | None:
        if not self.lost and self.local and process_state(self.pid) in ("", "Z"):
            self.mark_lost()
        return 1 if self.lost else None

    def wait(self, timeout: float) -> None:
        """Wait for its end, reading (and dropping) what it still sends."""
        deadline = time.monotonic() + timeout
        try:
            while self.poll() is None and self.conn.poll(max(0.0, min(0.05, deadline - time.monotonic()))):
                self.conn.recv()
        except (EOFError, OSError):
            self.mark_lost()
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        if self.local and self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def describe(self) -> str:
        if self.exitcode is not None:
            return f"(pid {self.pid}{self.where}) {describe_exit(self.exitcode)}"
        if not self.where:
            return f"(pid {self.pid}) was lost: its connection closed (its process ended)"
        return (f"(pid {self.pid}{self.where}) was lost: its connection closed (its process ended, or node "
                f"{self.node} was lost)")  # fmt: skip


class WorkerGroup:
    """``world`` worker processes, each running one ``factory(rank, world, payload)`` object.

    ``call(method, args_by_rank)`` runs that method on every worker at once and
    returns their replies in rank order. ``close()`` stops the group; it is
    idempotent, and also runs when the group is garbage-collected or the
    interpreter exits. ``hang_timeout_s``, ``torchrun``: see the module's rules; a ``cluster`` is started by
    torchrun always.
    """

    def __init__(
        self,
        factory: str,
        payloads: Sequence[Any],
        env: Mapping[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        hang_timeout_s: float | None = None,
        cluster: Cluster | None = None,
        torchrun: bool = False,
    ) -> None:
        self.factory = factory  # "module:callable", imported in the workers only
        self.world = len(payloads)
        self.hang_timeout_s = resolve_hang_timeout(hang_timeout_s)
        self._seen: dict[int, float] = {}  # rank → when the coordinator last heard from it (monotonic)
        self._waiting: set[int] = set()  # ranks whose reply the current call still awaits
        self._procs: list[subprocess.Popen | _Peer] = []
        self._agents: list[subprocess.Popen] = []  # torchrun's agent on this node, where it starts the workers
        self._conns: list[multiprocessing.connection.Connection] = []
        self._logs: list[Path] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="regbench-dp-")
        self.closed = False
        self._graceful = [True]  # a failed group is not asked to stop: its survivors may sit in a collective
        # The finalizer holds the processes, not the group: it runs when the group is collected, or at exit.
        self._finalizer = weakref.finalize(self, _stop, self._procs, self._conns, self._tmp, self._graceful,
                                          self._agents)  # fmt: skip
        try:
            if cluster is None and not torchrun:
                self._start(payloads, dict(env or {}), start_timeout_s)
            else:
                self._start_torchrun(cluster, payloads, dict(env or {}), start_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def tmpdir(self) -> str:
        """A private folder of the group, removed with it (the workers' and the agent's logs)."""
        return self._tmp.name

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def _start(self, payloads: Sequence[Any], env: dict[str, str], timeout_s: float) -> None:
        base_env = _with_package({**os.environ, **env})
        for rank in range(self.world):
            parent, child = multiprocessing.Pipe(duplex=True)
            log = Path(self.tmpdir) / f"worker{rank}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "backends._process_group", str(child.fileno()), str(os.getpid())],
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

    def _start_torchrun(
        self, cluster: Cluster | None, payloads: Sequence[Any], env: dict[str, str], timeout_s: float
    ) -> None:
        """torchrun's agents start the workers (backends._torchrun), this node's alone where ``cluster`` is None;
        each worker dials this listener."""
        from backends._torchrun import AGENT_ENV, LOCAL_HOST, start_agent

        nnodes, host = (cluster.nnodes, cluster.host) if cluster is not None else (1, LOCAL_HOST)
        if self.world % nnodes:
            raise ValueError(f"workers={self.world}: not a multiple of the {nnodes} nodes (torchrun starts "
                             "as many on every node)")  # fmt: skip
        key = secrets.token_hex(16)
        deadline = time.monotonic() + timeout_s
        with socket.create_server((host, 0), backlog=self.world) as server:
            control = f"{host}:{server.getsockname()[1]}"
            worker_env = {**env, **AGENT_ENV, CONTROL_ENV: control, KEY_ENV: key}
            group = {"nproc": self.world // nnodes, "env": worker_env}
            log = Path(self.tmpdir) / "agent.log"
            with open(log, "wb") as out:
                agent = start_agent(cluster, group, 0, exits=self._exits, stdout=out, stderr=subprocess.STDOUT)
            self._agents.append(agent)
            peers: dict[int, tuple[_Peer, str, int]] = {}
            while len(peers) < self.world:
                if agent.poll() is not None:
                    lines = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
                    tail = "\n".join(f"  [agent] {line}" for line in lines)
                    node = "node 0's " if cluster is not None else ""
                    raise WorkerError(f"{node}torchrun agent {describe_exit(agent.returncode)} before its group "
                                      f"of {self.world} workers started\n{tail}")  # fmt: skip
                if time.monotonic() > deadline:
                    where = (f" over {nnodes} nodes (is every node's regbench run up, its port open?)"
                             if cluster is not None else "")  # fmt: skip
                    raise WorkerError(f"worker group timed out after {timeout_s:g} s in 'start': {len(peers)} of "
                                      f"{self.world} workers dialled in{where}")  # fmt: skip
                server.settimeout(0.5)
                try:
                    sock, (address, *_) = server.accept()
                except TimeoutError:
                    continue
                sock.setblocking(True)  # Connection reads the bare descriptor
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, HANDSHAKE_TIMEVAL)
                conn = multiprocessing.connection.Connection(sock.detach())
                try:
                    multiprocessing.connection.deliver_challenge(conn, bytes.fromhex(key))
                    multiprocessing.connection.answer_challenge(conn, bytes.fromhex(key))
                    _, rank, node, pid, host, port = conn.recv()
                except (OSError, EOFError, ValueError, multiprocessing.AuthenticationError):
                    conn.close()
                    continue
                with socket.socket(fileno=os.dup(conn.fileno())) as same:  # no timeout from now on: heartbeats
                    same.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
                peers[rank] = (_Peer(conn, pid, node, host, nnodes), address, port)
        for rank in range(self.world):
            peer, *_ = peers[rank]
            self._procs.append(peer)
            self._conns.append(peer.conn)
            self._logs.append(log if peer.node == 0 else Path(self.tmpdir) / f"worker{rank}.log")
        # A coordination service that rank 0 hosts (JAX's) listens where rank 0 dialled from, on a port free there.
        rank0 = f"{peers[0][1]}:{peers[0][2]}"
        for rank, conn in enumerate(self._conns):
            payload = payloads[rank]
            if isinstance(payload, Mapping) and "address" in payload and payload["address"] is None:
                payload = {**payload, "address": rank0}
            conn.send(("init", self.factory, rank, self.world, payload))
        self._gather("start", max(1.0, deadline - time.monotonic()))

    @property
    def _exits(self) -> str:
        """The file where this node's torchrun agent writes its failed workers' exit statuses."""
        return str(Path(self.tmpdir) / "exits.json")

    def _agent_report(self, rank: int) -> None:
        """A lost worker of this node: its exit status as the agent reports it, once it stopped the node's others
        (AGENT_REPORT_S at most)."""
        proc = self._procs[rank]
        deadline = time.monotonic() + AGENT_REPORT_S
        while proc.node == 0 and self._agents and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                proc.exitcode = json.loads(Path(self._exits).read_text()).get(str(rank))
                return
            if self._agents[0].poll() is not None and not os.path.exists(self._exits):
                return  # the agent ended without a report
            time.sleep(0.05)

    def describe(self, rank: int) -> str:
        """Who worker ``rank`` is, and how it ended."""
        proc = self._procs[rank]
        if isinstance(proc, _Peer):
            if proc.poll() is not None:
                return proc.describe()
            return f"(pid {proc.pid}{proc.where}) failed"  # alive: it said why
        return f"(pid {proc.pid}) {describe_exit(proc.returncode)}"

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
        start = time.monotonic()
        deadline = start + timeout_s
        waiting = dict(enumerate(self._conns))
        self._waiting = set(waiting)
        self._seen = dict.fromkeys(waiting, start)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                late = sorted(waiting)
                self._graceful[0] = False
                self.close()
                raise WorkerError(f"worker group timed out after {timeout_s:g} s in '{what}': no reply from "
                                  f"rank(s) {late}", rank=late[0])  # fmt: skip
            # Wake at least every heartbeat: a hung worker is noticed by what does not arrive.
            for conn in multiprocessing.connection.wait(list(waiting.values()), timeout=min(left, BEAT_S)):
                rank = self._conns.index(conn)
                try:
                    status, value = conn.recv()
                except (EOFError, OSError):
                    self._lost(rank)
                    self._fail(rank, f"during '{what}'")
                self._seen[rank] = time.monotonic()
                if status == "beat":
                    continue
                if status == "error":
                    self._fail(rank, f"during '{what}'", report=value)
                replies[rank] = value
                del waiting[rank]
                self._waiting.discard(rank)
            # After the messages that arrived: a coordinator that was itself paused hears every backlog first.
            now = time.monotonic()
            hung = [rank for rank in waiting if now - self._seen[rank] > self.hang_timeout_s]
            if hung:
                self._hung(min(hung, key=self._seen.__getitem__), f"during '{what}'")
        return [replies[rank] for rank in range(self.world)]

    def _lost(self, rank: int) -> None:
        """Worker ``rank``'s connection closed: a torchrun-started worker is gone (a local one's process says so)."""
        if isinstance(self._procs[rank], _Peer):
            self._procs[rank].mark_lost()

    def _silent(self) -> list[int]:
        """Live workers owing a reply that went quiet (stopped, or no heartbeat for SILENT_CAUSE_S), oldest first."""
        now = time.monotonic()
        found = [
            rank
            for rank in self._waiting
            if self._procs[rank].poll() is None
            and (process_state(self._procs[rank].pid) in ("T", "t") or now - self._seen.get(rank, now) > SILENT_CAUSE_S)
        ]
        return sorted(found, key=lambda rank: self._seen.get(rank, now))

    def _hung(self, rank: int, what: str, peers_failed: bool = False) -> NoReturn:
        """Stop the group and raise, naming the worker that stopped answering (one line: no peer's stack)."""
        proc = self._procs[rank]
        silence = time.monotonic() - self._seen.get(rank, time.monotonic())
        stopped = " (its process is stopped: SIGSTOP, a debugger or job control)"
        state = stopped if process_state(proc.pid) in ("T", "t") else ""
        where = proc.where if isinstance(proc, _Peer) else ""
        # The frameworks' own timeouts (JAX's heartbeat: 10 s) may fail its peers before the hang timeout ends.
        why = "its peers failed waiting for it" if peers_failed else f"hang timeout {self.hang_timeout_s:g} s"
        self._graceful[0] = False
        self.close()  # SIGKILL: the one signal a stopped process obeys
        raise WorkerError(f"worker rank {rank} (pid {proc.pid}{where}) stopped answering {what}: no heartbeat for "
                          f"{silence:.1f} s ({why}){state}; the group was stopped", rank=rank)  # fmt: skip

    def _fail(self, rank: int, what: str, report: str | None = None) -> NoReturn:
        """Stop the group and raise, naming the root cause.

        When one worker dies its peers fail too, in their next collective, and
        may report first: a worker that died without a word (killed, exited) is
        the cause, so the others get FAULT_SETTLE_S to show whether one did.
        A live worker that went quiet first (stopped, hung) comes before both: its peers failed waiting for it.
        """
        reports = {rank: report} if report is not None else {}
        deadline = time.monotonic() + FAULT_SETTLE_S
        while True:
            for other, conn in enumerate(self._conns):
                try:
                    if other not in reports and conn.poll(0):
                        message = conn.recv()
                        self._seen[other] = time.monotonic()
                        if message[0] == "error":
                            reports[other] = message[1]
                except (EOFError, OSError):
                    self._lost(other)
            if hung := [r for r in self._silent() if r not in reports]:
                self._hung(hung[0], what, peers_failed=True)
            silent = [r for r, p in enumerate(self._procs) if p.poll() is not None and r not in reports]
            if silent or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        # The first found gone: torchrun's agent stops the failed worker's peers, which may be gone by now too.
        silent.sort(key=lambda r: getattr(self._procs[r], "lost_at", None) or 0.0)
        cause = silent[0] if silent else rank
        proc = self._procs[cause]
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # a dead worker's status is there at once; a failing one is leaving
        if isinstance(proc, _Peer) and proc.lost:
            self._agent_report(cause)
        message = f"worker rank {cause} {self.describe(cause)} {what}"
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


def _stop(procs: list, conns: list, tmp: tempfile.TemporaryDirectory, graceful: list[bool], agents: list) -> None:
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
        conn.close()  # a remote worker's end: it leaves (its recv or its heartbeat fails)
    # torchrun's agent ends once its workers have, or stops what it still runs (SIGTERM); a failed group's is
    # killed once it has reaped its workers, killed above (its monitor polls them every 0.5 s): they die with it.
    deadline = time.monotonic() + 2.0
    while (
        not graceful[0]
        and agents
        and time.monotonic() < deadline
        and any(process_state(proc.pid) == "Z" for proc in procs if getattr(proc, "local", False))
    ):
        time.sleep(0.05)
    for agent in agents:
        if graceful[0]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.wait(timeout=STOP_GRACE_S)
        for sig in (signal.SIGTERM, signal.SIGKILL) if graceful[0] else (signal.SIGKILL,):
            if agent.poll() is None:
                agent.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    agent.wait(timeout=STOP_GRACE_S)
    tmp.cleanup()


# --- the worker side ----------------------------------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, so no worker is ever orphaned.

    Also used by regbench run's pytest child (bench.parent_watch): one copy of the prctl call."""
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


class _Heartbeat:
    """A thread that sends ``("beat", None)`` every BEAT_S while the worker is busy (starting, or in a call).

    Only while busy: the coordinator reads the pipe only while it waits for a reply, and beats sent between
    calls would fill the pipe. One lock orders beats and replies, so no beat follows a reply. The beats
    come from a thread, so a worker waiting in a collective (the GIL released) still beats; a stopped one does not.
    """

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.busy = True  # from the start: the coordinator waits for the worker's start
        threading.Thread(target=self._run, name="regbench-heartbeat", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(BEAT_S)
            with self.lock:
                if self.busy:
                    try:
                        self.conn.send(("beat", None))
                    except OSError:  # the coordinator is gone (across nodes: its node may be): nothing left to do
                        os._exit(1)

    def begin(self) -> None:
        with self.lock:
            self.busy = True

    def reply(self, message: tuple) -> None:
        with self.lock:
            self.busy = False
            self.conn.send(message)


def _serve(fd: int, parent_pid: int) -> int:
    die_with_parent(parent_pid)
    return _serve_on(multiprocessing.connection.Connection(fd))


def _serve_torchrun() -> int:
    """A worker torchrun started (``--torchrun``): dial the coordinator, say who it is, then serve as any other."""
    rank = os.environ["RANK"]
    if os.environ.get(RANK_ENV) != rank:  # its rank in its environment from the start, as for any worker: re-exec
        os.execve(sys.executable, [sys.executable, "-m", "backends._process_group", "--torchrun"],
                  {**os.environ, RANK_ENV: rank})  # fmt: skip
    die_with_parent(os.getppid())  # the agent: it is this worker's supervisor
    host, _, port = os.environ[CONTROL_ENV].rpartition(":")
    conn = multiprocessing.connection.Client((host, int(port)), authkey=bytes.fromhex(os.environ[KEY_ENV]))
    conn.send(("hello", int(rank), int(os.environ.get(NODE_ENV, -1)), os.getpid(), socket.gethostname(),
               free_port("")))  # fmt: skip
    return _serve_on(conn)


def _serve_on(conn: multiprocessing.connection.Connection) -> int:
    beat = _Heartbeat(conn)
    worker = None
    try:
        _, factory, rank, world, payload = conn.recv()
        if os.environ.get(FAULT_ENV) == f"{rank}:exit-before-init":
            return 3
        module, name = factory.split(":")
        worker = getattr(importlib.import_module(module), name)(rank, world, payload)
        beat.reply(("ok", None))
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return 0
            beat.begin()
            _, method, args = message
            beat.reply(("ok", getattr(worker, method)(*args)))
    except EOFError:
        return 0  # the coordinator is gone: nothing left to do
    except BaseException:
        with contextlib.suppress(OSError):
            beat.reply(("error", traceback.format_exc()))
        return 1
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


if __name__ == "__main__":
    sys.exit(_serve_torchrun() if sys.argv[1:] == ["--torchrun"] else _serve(int(sys.argv[1]), int(sys.argv[2])))
