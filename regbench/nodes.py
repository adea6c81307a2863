"""``regbench run`` across nodes (``--nnodes N --node-rank R --rdzv HOST:PORT``, torchrun's names).

Rules: node 0 runs the benchmarks, saves the run and writes the report, as on
one node; it hosts, at HOST:PORT, the c10d store that torchrun's agents
rendezvous through (torch.distributed.TCPStore: torch is needed on every node)
and puts the cluster in its children's environment (backends._cluster). Every
other node runs no benchmark: it joins the store, claims its node rank, and for
every group node 0's benchmarks start (announced in the store,
backends._torchrun) it starts its own torchrun agent, whose workers dial node
0's coordinator; it ends when node 0 says the run is over (exit 0 if node 0's
run succeeded, else 1). Every node beats (a counter in the store, each
second); node 0 takes a node whose counter stood still for ``LOST_AFTER_S``
for lost, and stops its run with one line naming it,
saving nothing; a node that loses node 0 (its store) stops its agent and
exits with one line naming node 0. The options are checked before anything
starts (``check``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from backends import Cluster, announced_group, rendezvous_store, split_endpoint, start_agent
from regbench.checks import UsageError

#: Seconds node 0 waits for every other node to join, and another node for node 0's store.
JOIN_TIMEOUT_S = 300.0
#: Seconds between two beats of a node; a node silent this long is lost.
BEAT_S = 1.0
LOST_AFTER_S = 15.0
#: Seconds without a beat that make a node lost when node 0 asks after a failure (``Host.lost_now``).
CHECK_S = 5.0
#: Seconds node 0 waits, at the end, for the other nodes to read that the run is over.
BYE_TIMEOUT_S = 10.0
NODE_KEY, BEAT_KEY, BYE_KEY = "regbench/node/{}", "regbench/beat/{}", "regbench/bye/{}"
CONFIG_KEY, DONE_KEY = "regbench/config", "regbench/done"


def check(args) -> Cluster | None:
    """The cluster ``regbench run``'s options describe, None for one node; UsageError (one line) where they do not
    fit."""
    nnodes, rank, rdzv = args.nnodes, args.node_rank, args.rdzv
    if not 0 <= rank < nnodes:
        raise UsageError(f"--node-rank {rank}: must be from 0 to --nnodes - 1 = {nnodes - 1}")
    if nnodes == 1:
        if rdzv is not None:
            raise UsageError("--rdzv: only across nodes (--nnodes 2 or more)")
        return None
    if rdzv is None:
        raise UsageError(f"--nnodes {nnodes}: needs --rdzv HOST:PORT, node 0's address and a free port on it")
    try:
        host, port = split_endpoint(rdzv)
    except ValueError as exc:
        raise UsageError(f"--rdzv: {exc}") from None
    # torch's C++ warnings (a lost store's, with its stack) would bury regbench's one line: this command's
    # processes log torch's errors only, unless the user chose otherwise. Set before torch is imported.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    try:
        import torch.distributed as dist
    except ImportError:
        dist = None
    if dist is None or not dist.is_available():
        raise UsageError(f"--nnodes {nnodes}: needs torch with torch.distributed (torchrun starts the workers)")
    return Cluster(nnodes, host, port, "")


def _count(store, key: str) -> int:
    return store.add(key, 0)  # reads a counter without waiting for it to exist


class Host:
    """Node 0: the store, the wait for the other nodes, their watch during the run, the end of the run.

    ``lost`` is the line naming a lost node (None while all are there); once set, the main thread gets SIGTERM
    (regbench.run stops its pytest child as for any stopping signal).
    """

    def __init__(self, cluster: Cluster) -> None:
        try:
            self.store = rendezvous_store(cluster, master=True, timeout_s=60)
        except Exception as exc:  # torch raises RuntimeError or DistNetworkError for a port taken or an address
            raise UsageError(f"--rdzv {cluster.endpoint}: cannot listen there ({str(exc).splitlines()[0]})") from None
        self.cluster = cluster._replace(run_id=f"regbench-{secrets.token_hex(4)}")
        self.store.set(CONFIG_KEY, json.dumps({"nnodes": cluster.nnodes, "run_id": self.cluster.run_id}))
        self.store.add(NODE_KEY.format(0), 1)
        self.lost: str | None = None
        self._done = threading.Event()

    def env(self) -> dict[str, str]:
        return self.cluster.env()

    def wait_for_nodes(self) -> None:
        """Every other node joined (UsageError after JOIN_TIMEOUT_S); then the watch starts."""
        others = range(1, self.cluster.nnodes)
        print(f"waiting for {len(others)} more node(s) at {self.cluster.endpoint} (regbench run --nnodes "
              f"{self.cluster.nnodes} --node-rank R --rdzv {self.cluster.endpoint})", flush=True)  # fmt: skip
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while missing := [r for r in others if not _count(self.store, NODE_KEY.format(r))]:
            if time.monotonic() > deadline:
                raise UsageError(f"node(s) {missing} did not join at {self.cluster.endpoint} within "
                                 f"{JOIN_TIMEOUT_S:g} s; nothing run")  # fmt: skip
            time.sleep(0.2)
        print(f"all {self.cluster.nnodes} nodes joined", flush=True)
        threading.Thread(target=self._watch, name="regbench-nodes", daemon=True).start()

    def _watch(self) -> None:
        store = rendezvous_store(self.cluster, timeout_s=30)
        main = threading.main_thread().ident
        beats = {r: (-1, time.monotonic()) for r in range(1, self.cluster.nnodes)}
        while not self._done.wait(BEAT_S):
            now = time.monotonic()
            for r, (count, since) in beats.items():
                if (latest := _count(store, BEAT_KEY.format(r))) != count:
                    beats[r] = (latest, now)
                elif now - since > LOST_AFTER_S:
                    self.lost = f"node {r} was lost: no heartbeat for {now - since:.0f} s"
                if self.lost:
                    signal.pthread_kill(main, signal.SIGTERM)
                    return

    def lost_now(self, within_s: float = CHECK_S) -> bool:
        """Whether a node is lost, as the watch found, or as its heartbeat, standing still for ``within_s``, says
        now (a failed benchmark may be a lost node's doing: asked before the watch could tell)."""
        others = range(1, self.cluster.nnodes)
        with contextlib.suppress(Exception):
            before = {r: _count(self.store, BEAT_KEY.format(r)) for r in others}
            deadline = time.monotonic() + within_s
            while not self.lost and (
                still := [r for r in others if _count(self.store, BEAT_KEY.format(r)) <= before[r]]
            ):
                if time.monotonic() > deadline:
                    self.lost = f"node {still[0]} was lost: no heartbeat for {within_s:g} s"
                time.sleep(0.2)
        return self.lost is not None

    def release(self) -> None:
        """The other nodes are needed no more: their watch ends."""
        self._done.set()

    def close(self, status: int) -> None:
        """Tell the other nodes the run is over (``status``: regbench's exit status), and wait for them to read it."""
        self.release()
        with contextlib.suppress(Exception):
            self.store.set(DONE_KEY, str(status))
            deadline = time.monotonic() + (0 if self.lost else BYE_TIMEOUT_S)
            while time.monotonic() < deadline and not all(
                _count(self.store, BYE_KEY.format(r)) for r in range(1, self.cluster.nnodes)
            ):
                time.sleep(0.1)


def serve(cluster: Cluster, node_rank: int) -> int:
    """Another node than 0: start this node's agent for every group node 0 announces, until node 0 ends the run."""
    lost = f"node 0 (the store at {cluster.endpoint}) was lost"
    try:
        store = rendezvous_store(cluster, timeout_s=JOIN_TIMEOUT_S)
        config = json.loads(store.get(CONFIG_KEY))
    except Exception as exc:
        raise UsageError(f"--rdzv {cluster.endpoint}: node 0 not reached ({str(exc).splitlines()[0]})") from None
    if config["nnodes"] != cluster.nnodes:
        raise UsageError(f"--nnodes {cluster.nnodes}: node 0 runs with --nnodes {config['nnodes']}")
    if store.add(NODE_KEY.format(node_rank), 1) != 1:
        raise UsageError(f"--node-rank {node_rank}: another node has joined with that rank")
    cluster = cluster._replace(run_id=config["run_id"])
    print(f"node {node_rank} of {cluster.nnodes} joined at {cluster.endpoint}; serving node 0's groups", flush=True)
    stop = threading.Event()
    threading.Thread(target=_beat, args=(cluster, node_rank, stop), name="regbench-beat", daemon=True).start()
    agent: subprocess.Popen | None = None
    index = 0
    try:
        while True:
            if store.check([DONE_KEY]):
                status = int(store.get(DONE_KEY))
                store.add(BYE_KEY.format(node_rank), 1)
                print(f"node 0 ended the run (status {status}); {index} group(s) served", flush=True)
                return 0 if status == 0 else 1
            if (group := announced_group(store, index)) is not None:
                # Node 0 starts a group once the last one is closed: an agent still here is only leaving.
                _stop(agent)
                agent = start_agent(cluster, group, node_rank)
                index += 1
                continue
            time.sleep(0.2)
    except Exception as exc:  # the store's connection failed: node 0 is gone
        print(f"regbench: error: {lost} ({str(exc).splitlines()[0]}); stopping", file=sys.stderr)
        return 1
    finally:
        stop.set()
        _stop(agent)


def _stop(agent: subprocess.Popen | None) -> None:
    """An agent asked to stop (SIGTERM: it stops its workers), then killed."""
    if agent is not None and agent.poll() is None:
        agent.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(timeout=10)
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def _beat(cluster: Cluster, node_rank: int, stop: threading.Event) -> None:
    """This node's heartbeat: a counter in node 0's store, one more each BEAT_S."""
    with contextlib.suppress(Exception):  # node 0 gone: the main loop finds it too
        store = rendezvous_store(cluster, timeout_s=30)
        while not stop.wait(BEAT_S):
            store.add(BEAT_KEY.format(node_rank), 1)
