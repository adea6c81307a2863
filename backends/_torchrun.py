"""torchrun's elastic agent as the launcher of a group's workers on every node of a cluster (backends._cluster).

Rules: each node's side of a group is ``python -m backends._torchrun PARENT_PID``
(``start_agent``), with the group in ``$REGBENCH_GROUP``, dying with its parent.
On node 0, started by the coordinator (backends._process_group), it announces
the group in the c10d store that node 0's ``regbench run`` hosts at the
rendezvous endpoint (key ``regbench/group/<i>``, ``i`` counted by the store), so
that every other node's ``regbench run`` (regbench.nodes) starts its own; each
then runs torchrun's agent (``torch.distributed.run.main``). The
agents rendezvous (c10d, id ``<run id>.<i>``) and each starts its
``nproc_per_node`` workers, ``python -m backends._process_group --torchrun``,
which dial the coordinator back. torchrun does the start, the rendezvous and
the failure detection of its node (a failed worker stops the node's others;
no restarts); every wait has a timeout. This module imports torch only when
run as a program (the coordinator's process need not hold torch: JAX's groups
use it too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

from backends._cluster import NODE_ENV, Cluster, current

GROUP_ENV = "REGBENCH_GROUP"
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


def agent_command(cluster: Cluster, nproc: int, rdzv_id: str, node_rank: int) -> list[str]:
    """The torchrun command line of one node's agent for one group."""
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={cluster.nnodes}", f"--node-rank={node_rank}",
            f"--nproc-per-node={nproc}", "--rdzv-backend=c10d", f"--rdzv-endpoint={cluster.endpoint}",
            f"--rdzv-id={rdzv_id}", f"--rdzv-conf=is_host=0,join_timeout={JOIN_TIMEOUT_S}", "--max-restarts=0",
            "--monitor-interval=0.5", "-m", "backends._process_group", "--torchrun"]  # fmt: skip


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


def start_agent(cluster: Cluster, group: dict, node_rank: int, **popen: Any) -> subprocess.Popen:
    """This node's torchrun agent for ``group`` (``python -m backends._torchrun``), dying with this process. No
    ``preexec_fn``: a fork of a process that runs JAX's threads (node 0's benchmarks) may deadlock."""
    from backends._process_group import _with_package

    env = _with_package({**os.environ, **group["env"], **cluster.env(), NODE_ENV: str(node_rank),
                         GROUP_ENV: json.dumps(group)})  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "backends._torchrun", str(os.getpid())], env=env,
                            stdin=subprocess.DEVNULL, **popen)  # fmt: skip


def _main(parent_pid: int) -> int:
    from torch.distributed.run import main

    from backends._process_group import die_with_parent

    die_with_parent(parent_pid)  # and its workers die with it (backends._process_group)
    cluster = current()
    if cluster is None:
        print("backends._torchrun: no cluster in the environment (regbench run --nnodes N sets it)", file=sys.stderr)
        return 2
    group = json.loads(os.environ[GROUP_ENV])
    node_rank = int(os.environ[NODE_ENV])
    rdzv_id = announce(cluster, group) if node_rank == 0 else group["rdzv_id"]
    main(agent_command(cluster, group["nproc"], rdzv_id, node_rank)[3:])  # less "python -m torch.distributed.run"
    return 0


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1])))
