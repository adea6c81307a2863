"""torchrun's elastic agent as the launcher of a group's workers: on one node, and on every node of a cluster.

Rules: each node's side of a group is ``python -m backends._torchrun PARENT_PID``
(``start_agent``), with the group in ``$REGBENCH_GROUP``, dying with its parent.
On one node (no cluster in the environment) it runs torchrun's agent alone, its
c10d rendezvous on 127.0.0.1 at a port the OS picks (torchrun's
``--standalone``, held to the loopback address). Across nodes
(backends._cluster), on node 0, started by the coordinator
(backends._process_group), it announces
the group in the c10d store that node 0's ``regbench run`` hosts at the
rendezvous endpoint (key ``regbench/group/<i>``, ``i`` counted by the store), so
that every other node's ``regbench run`` (regbench.nodes) starts its own; each
then runs torchrun's agent (``torch.distributed.run.main``). The
agents rendezvous (c10d, id ``<run id>.<i>``) and each starts its
``nproc_per_node`` workers, ``python -m backends._process_group --torchrun``,
which dial the coordinator back. torchrun does the start, the rendezvous and
the failure detection of its node (a failed worker stops the node's others;
no restarts); every wait has a timeout. A failed worker's exit status (torchrun's
``ChildFailedError``) is written, ``{rank: status}`` as JSON, to ``$REGBENCH_DP_EXITS``
where the coordinator gave one (its node's agent), so that its error names
how the worker ended. The agent is a process of its own, not
``torch.distributed.launcher.api.elastic_launch`` inside the benchmark's
process: that sets ``TORCHELASTIC_SIGNALS_TO_HANDLE`` in its caller's
environment (global state) and installs its signal handlers from the main
thread only. This module imports torch only when
run as a program (the coordinator's process need not hold torch: JAX's groups
use it too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

from backends._cluster import NODE_ENV, Cluster, current

GROUP_ENV = "REGBENCH_GROUP"
#: Where an agent writes its failed workers' exit statuses (a file the coordinator reads), when set.
EXITS_ENV = "REGBENCH_DP_EXITS"
#: One node's rendezvous: torchrun's --standalone (a c10d store the agent hosts at a port the OS picks), on loopback.
LOCAL_HOST = "127.0.0.1"
#: Store keys: the group counter, each group's announcement.
GROUPS_KEY = "regbench/groups"
GROUP_KEY = "regbench/group/{}"
#: Seconds an agent waits for the other nodes' agents to join its rendezvous.
JOIN_TIMEOUT_S = 120
#: Seconds a store operation may wait (connecting to node 0, a key that should be there).
STORE_TIMEOUT_S = 60
#: Workers' and agents' settings of every node: the workers' rendezvous gets a store of its own, rank 0's,
#: rather than sharing the agents' (whose keys every group of a run would reuse).
AGENT_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", "PYTHONUNBUFFERED": "1"}


def agent_command(cluster: Cluster | None, nproc: int, rdzv_id: str, node_rank: int) -> list[str]:
    """The torchrun command line of one node's agent for one group (``cluster`` None: one node, on loopback)."""
    if cluster is None:
        rendezvous = ["--nnodes=1", f"--rdzv-endpoint={LOCAL_HOST}:0", f"--local-addr={LOCAL_HOST}"]
    else:
        rendezvous = [f"--nnodes={cluster.nnodes}", f"--node-rank={node_rank}", f"--rdzv-endpoint={cluster.endpoint}",
                      f"--rdzv-conf=is_host=0,join_timeout={JOIN_TIMEOUT_S}"]  # fmt: skip
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc-per-node={nproc}",
            "--rdzv-backend=c10d", f"--rdzv-id={rdzv_id}", "--max-restarts=0", "--monitor-interval=0.5",
            "-m", "backends._process_group", "--torchrun"]  # fmt: skip


def rendezvous_store(cluster: Cluster, master: bool = False, timeout_s: float = STORE_TIMEOUT_S):
    """The c10d store at the rendezvous endpoint: node 0's regbench run hosts it (``master``), the rest are clients.
    ``timeout_s``: how long a client tries to connect, and any wait for a key."""
    import torch.distributed as dist

    return dist.TCPStore(cluster.host, cluster.port, is_master=master, wait_for_workers=False,
                         timeout=timedelta(seconds=timeout_s))  # fmt: skip


def announce(cluster: Cluster, group: dict) -> str:
    """Publish ``group`` (nproc, control address, key, env) for the other nodes; its rendezvous id."""
    store = rendezvous_store(cluster)
    index = store.add(GROUPS_KEY, 1) - 1
    rdzv_id = f"{cluster.run_id}.{index}"
    store.set(GROUP_KEY.format(index), json.dumps({**group, "rdzv_id": rdzv_id}))
    return rdzv_id


def announced_group(store, index: int) -> dict | None:
    """Group ``index`` as node 0 announced it, None while it has not."""
    key = GROUP_KEY.format(index)
    return json.loads(store.get(key)) if store.check([key]) else None


def start_agent(cluster: Cluster | None, group: dict, node_rank: int, exits: str | None = None,
                **popen: Any) -> subprocess.Popen:  # fmt: skip
    """This node's torchrun agent for ``group`` (``python -m backends._torchrun``), dying with this process; it
    writes its failed workers' exit statuses to the file ``exits``, if given. No ``preexec_fn``: a fork of a process
    that runs JAX's threads (node 0's benchmarks) may deadlock."""
    from backends._process_group import _with_package

    env = _with_package({**os.environ, **group["env"], **(cluster.env() if cluster else {}),
                         NODE_ENV: str(node_rank), GROUP_ENV: json.dumps(group)})  # fmt: skip
    env.pop(EXITS_ENV, None)
    if exits is not None:
        env[EXITS_ENV] = exits
    return subprocess.Popen([sys.executable, "-m", "backends._torchrun", str(os.getpid())], env=env,
                            stdin=subprocess.DEVNULL, **popen)  # fmt: skip


def _main(parent_pid: int) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main

    from backends._process_group import die_with_parent

    die_with_parent(parent_pid)  # and its workers die with it (backends._process_group)
    cluster = current()  # None: one node
    group = json.loads(os.environ[GROUP_ENV])
    node_rank = int(os.environ[NODE_ENV])
    if cluster is None:  # one node: a rendezvous of its own, named as --standalone names it
        rdzv_id = str(uuid.uuid4())
    elif node_rank == 0:
        rdzv_id = announce(cluster, group)
    else:
        rdzv_id = group["rdzv_id"]
    try:
        main(agent_command(cluster, group["nproc"], rdzv_id, node_rank)[3:])  # less "python -m torch.distributed.run"
    except ChildFailedError as exc:
        if exits := os.environ.get(EXITS_ENV):
            statuses = {rank: failure.exitcode for rank, failure in exc.failures.items()}
            with open(exits + ".tmp", "w") as out:
                json.dump(statuses, out)
            os.replace(exits + ".tmp", exits)  # whole or absent: the coordinator may read it at any moment
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1])))
