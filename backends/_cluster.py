"""The nodes a data-parallel group spans, as ``regbench run --nnodes N --rdzv HOST:PORT`` describes them.

Rules: this module imports no framework. ``regbench run`` on node 0 puts the
cluster in its children's environment (``REGBENCH_NNODES``, ``REGBENCH_RDZV``,
``REGBENCH_RUN_ID``), as torchrun puts ``WORLD_SIZE`` in its workers'; without
them (a user's own script, one machine) there is no cluster and a group is one
node's, started by regbench's own supervisor. With them, every group is
started by torchrun's elastic agent on each node (backends._torchrun), its
agents rendezvousing (c10d) at HOST:PORT, where node 0's ``regbench run`` hosts
the store.
"""

from __future__ import annotations

import os
from typing import NamedTuple

NNODES_ENV = "REGBENCH_NNODES"
RDZV_ENV = "REGBENCH_RDZV"
RUN_ID_ENV = "REGBENCH_RUN_ID"
#: The node a torchrun agent runs on (regbench's node rank, which torchrun's c10d rendezvous does not keep).
NODE_ENV = "REGBENCH_NODE_RANK"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def split_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); ValueError, in one line, for anything else."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT with a port from 1 to 65535, got {text!r}")
    return host, int(port)


class Cluster(NamedTuple):
    nnodes: int
    host: str  # node 0's address, as every node reaches it
    port: int  # the c10d rendezvous store's, hosted by node 0's regbench run
    run_id: str  # unique to one regbench run: each group's rendezvous id starts with it

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """All nodes on this machine (a test): traffic held to the loopback interface."""
        return self.host in LOOPBACK

    def env(self) -> dict[str, str]:
        return {NNODES_ENV: str(self.nnodes), RDZV_ENV: self.endpoint, RUN_ID_ENV: self.run_id}


def current() -> Cluster | None:
    """The cluster of this process's ``regbench run``, None on one node."""
    nnodes = int(os.environ.get(NNODES_ENV, "1") or 1)
    if nnodes <= 1:
        return None
    host, port = split_endpoint(os.environ[RDZV_ENV])
    return Cluster(nnodes, host, port, os.environ[RUN_ID_ENV])


def nodes() -> int:
    """How many nodes a data-parallel group spans here: 1 without a cluster."""
    cluster = current()
    return cluster.nnodes if cluster is not None else 1
