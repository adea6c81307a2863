"""JAX data-parallel trainers: one process per shard, gradients summed by ``lax.psum`` across processes.

Rules: every worker is one JAX process of a ``jax.distributed`` group with one
device (a CPU device with gloo collectives, or one GPU); the data is one
globally sharded array over the mesh of all devices, each process holding one
contiguous shard. The whole training is one compiled program, ``shard_map``
over the mesh inside ``jit``, with ``lax.scan`` over epochs: each device
computes its shard's loss (the seed's and linear's by code of their own, any
other family's by its module's loss, written once) and, by
``jax.value_and_grad``, its gradient, and one ``psum`` per epoch sums its parts
(the seed's three numbers: loss, ∂w, ∂b) before every device applies the same
update. Uneven shards are padded to the longest and
masked (an iota compare, no extra memory read). JAX settings (gloo, x64,
platform, thread flags) and a CPU worker's one core are set inside the workers
only, never in the calling process; the coordinator imports JAX only to probe availability. Every wait
has a timeout: the rendezvous (``initialization_timeout``), a dead peer
(``heartbeat_timeout_seconds``) and the shutdown barrier. Across nodes
(backends._cluster) torchrun starts the processes and each calls
``jax.distributed.initialize(coordinator_address, num_processes, process_id)``
with its rank: the coordination service runs in rank 0, on a port free on its
node; gloo binds to loopback only where every node is this machine (else to
``$GLOO_SOCKET_IFNAME``'s interface, where set).
"""

from __future__ import annotations

import math
import os
import time
from functools import partial

import jax
import numpy as np

import problems
from backends._cluster import current
from backends._core import Problem, TrainConfig
from backends._data_parallel import DataParallelFit, Footprint, shard_payloads
from backends._process_group import free_port, vm_hwm_bytes

VARIANTS = {"cpu": ("dp",), "gpu": ("dp",)}
#: Seconds the rendezvous, a silent peer and the shutdown barrier may take before JAX gives up.
INIT_TIMEOUT_S = 60
HEARTBEAT_TIMEOUT_S = 10
SHUTDOWN_TIMEOUT_S = 10
#: Each CPU worker computes on one thread: the parallelism is the workers.
CPU_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false"
#: From this many points in a shard, a CPU worker runs on one core of its own (see _one_core).
PIN_MIN_POINTS = 1 << 20
#: As in backends.jax_grad: up to this size the loss squares its residual inside the sum, which XLA fuses.
SMALL_MAX_N = 10_000
#: One worker's peak memory (see backends._data_parallel.Footprint): 241 MiB idle, ~5.5× its shard's x more.
FOOTPRINT = Footprint(base=256 * 2**20, per_shard_byte=8)


def _gloo_available() -> bool:
    try:
        from jax._src.lib import _jax  # jaxlib's extension: where the gloo TCP collectives live
    except ImportError:
        return False
    return hasattr(_jax, "make_gloo_tcp_collectives")


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no JAX data-parallel variant {variant!r} on {device!r}"
    if device == "cpu" and not _gloo_available():
        return f"no gloo CPU collectives in jaxlib {jax.__version__}"
    if device == "gpu":
        try:
            jax.devices("gpu")
        except RuntimeError:
            return f"JAX has no GPU device (jaxlib {jax.__version__}, default backend {jax.default_backend()})"
    return ""


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig) -> DataParallelFit:
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    if device == "gpu" and config.workers > len(jax.devices("gpu")):
        raise ValueError(f"needs one GPU per worker: {config.workers} workers, {len(jax.devices('gpu'))} GPU(s)")
    env = {"JAX_PLATFORMS": "cpu" if device == "cpu" else "cuda"}
    if device == "cpu":
        env.update(
            OMP_NUM_THREADS="1", XLA_FLAGS=" ".join(filter(None, (os.environ.get("XLA_FLAGS"), CPU_THREAD_FLAGS)))
        )
    cluster = current()
    # One node: the coordination service listens on 127.0.0.1 only, on a port the OS chose a moment ago. Across
    # nodes the group fills in rank 0's address (backends._process_group).
    address = f"127.0.0.1:{free_port()}" if cluster is None else None
    loopback = cluster is None or cluster.loopback
    payloads = shard_payloads(problem, config, FOOTPRINT, device=device, address=address, loopback=loopback)
    return DataParallelFit(f"{__name__}:Worker", payloads, env)


def _loss(w, b, x2, y, valid):
    """The seed's loss on x² and a scalar w; problem linear's on X (n, d) and θ (d,) (a rank: traced apart)."""
    r = (x2 @ w if x2.ndim == 2 else x2 * w) + b - y
    if valid is not None:
        r = jax.numpy.where(valid, r, 0)  # padding of an uneven shard adds nothing
    if r.shape[0] <= SMALL_MAX_N:
        return 0.5 * (r * r).sum()
    return (0.5 * r**2).sum()


_loss_and_grad = jax.value_and_grad(_loss, argnums=(0, 1))


def _valid(counts, length):
    """This device's mask of real points, or None when every shard has the same length."""
    if len(set(counts)) == 1:
        return None
    count = jax.numpy.asarray(counts)[jax.lax.axis_index("w")]
    return jax.lax.iota(np.int32, length) < count


def _train(x2, y, *, params0, lr, epochs, counts):
    """The seed's and linear's training (``_loss``); one array out: [every parameter…, final loss, losses…]."""
    jnp = jax.numpy
    valid = _valid(counts, x2.shape[0])
    w0, b0 = params0.values()

    def epoch(carry, _):
        # w and b are the same on every device. Differentiating through them as such would make JAX
        # insert the sum over devices itself (the transpose of a broadcast is a psum); cast to
        # "varying", each device's gradient is its shard's alone, and one psum sums all three parts.
        w, b = carry
        loss, (grad_w, grad_b) = _loss_and_grad(*(jax.lax.pcast(v, "w", to="varying") for v in carry), x2, y, valid)
        if jnp.ndim(w):  # problem linear: the parts are (loss, ∂θ…, ∂b), still one all-reduce
            total = jax.lax.psum(jnp.concatenate([loss[None], grad_w, grad_b[None]]), "w")
            return (w - lr * total[1:-1], b - lr * total[-1]), total[0]
        total = jax.lax.psum(jnp.stack([loss, grad_w, grad_b]), "w")  # the one all-reduce of the epoch
        return (w - lr * total[1], b - lr * total[2]), total[0]

    (w, b), losses = jax.lax.scan(epoch, (w0, b0), length=epochs)
    final = jax.lax.psum(_loss(w, b, x2, y, valid), "w")
    if jnp.ndim(w):  # [θ…, b, final, losses...]
        return jnp.concatenate([w, jnp.stack([b, final]), losses])
    return jnp.concatenate([jnp.stack([w, b, final]), losses])  # one transfer: [w, b, final, losses...]


def _train_model(x, y, *, params0, lr, epochs, counts, loss):
    """Any other family by its module's ``loss`` (written once, problems), as jax-grad-scan trains it: the
    epoch's parts (loss, every parameter's gradient, flattened in order) summed by one psum. An uneven shard is
    the rows all shards hold plus one more, the latter counted only where it is real: the loss is a sum over the
    rows, so no mask inside a model's loss is needed. One array out, as ``_train``'s."""
    jnp = jax.numpy
    base = min(counts)
    longer = sum(count > base for count in counts)  # the first ``longer`` shards hold one row more (shard_bounds)

    def shard_loss(params):
        value = loss(jnp, params, x[:base], y[:base])
        if longer:
            last = loss(jnp, params, x[base:], y[base:])
            value = value + jnp.where(jax.lax.axis_index("w") < longer, last, 0)
        return value

    loss_and_grad = jax.value_and_grad(shard_loss)

    def epoch(params, _):
        # As in _train: cast to "varying", each device's gradient is its shard's alone.
        value, grads = loss_and_grad(jax.tree.map(lambda v: jax.lax.pcast(v, "w", to="varying"), params))
        total = jax.lax.psum(jnp.concatenate([value[None], *(jnp.ravel(grads[name]) for name in params0)]), "w")
        new, start = {}, 1
        for name in params0:
            p = params[name]
            new[name] = p - lr * total[start : start + p.size].reshape(p.shape)
            start += p.size
        return new, total[0]

    params, losses = jax.lax.scan(epoch, params0, length=epochs)
    final = jax.lax.psum(shard_loss(params), "w")
    return jnp.concatenate([*(jnp.ravel(params[name]) for name in params0), final[None], losses])


#: The seed's and linear's hand-tuned training, and the features it reads (the seed's x², once); any other
#: family's workers run its module's loss (``_train_model``): a new family needs no entry here.
TRAIN = {"quadratic": _train, "linear": _train}
FEATURES = {"quadratic": lambda x: (x * x).reshape(-1)}


def _allreduces(x2, *, rounds):
    def body(parts, _):
        return jax.lax.psum(parts, "w") * 0.5, None  # depends on the carry: no round can be hoisted

    parts, _ = jax.lax.scan(body, jax.numpy.ones(3, x2.dtype), length=rounds)
    return parts


def _one_core(rank: int) -> None:
    """Run this worker, and the threads XLA starts later, on one core of those the group may use.

    XLA_FLAGS keeps Eigen to one thread, but XLA's YNNPACK reductions still use the CPU client's
    thread pool: one worker alone at 10⁷ points took 7.3 ms an epoch on two cores, 10.6 ms on one
    (2026-11-25), so it competed with the other workers for their cores, and k workers did not add
    k cores' worth of work (2 workers: 0.88× one, 1.18× pinned). The rank picks the core, so that k
    workers on k cores use each once. Only for large shards (PIN_MIN_POINTS): a pinned worker's gloo
    thread then waits for its own core, and an all-reduce takes ~3 ms instead of ~0.2 ms, which
    small shards, whose epochs are all latency, would pay in full.
    """
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[rank % len(cores)]})


def _gloo_bind(loopback: bool) -> None:
    """Make JAX's gloo collectives bind to 127.0.0.1, or to $GLOO_SOCKET_IFNAME's interface (in this worker only).

    JAX creates them without a hostname, so gloo binds to whatever this
    machine's hostname resolves to, which need not be loopback (nor the
    interface the nodes share). Its factory takes a hostname and an interface;
    JAX reads it from jaxlib's module when it builds the CPU client, so
    wrapping it there, before the first computation, is enough.
    """
    from jax._src.lib import _jax

    make = _jax.make_gloo_tcp_collectives
    if loopback:
        _jax.make_gloo_tcp_collectives = partial(make, hostname="127.0.0.1")
    elif interface := os.environ.get("GLOO_SOCKET_IFNAME"):
        _jax.make_gloo_tcp_collectives = partial(make, interface=interface)


class Worker:
    """One JAX process of the group: its shard of the global arrays, and the compiled training."""

    def __init__(self, rank: int, world: int, payload: dict) -> None:
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        # Process-wide settings, in this worker process only.
        local = int(os.environ.get("LOCAL_RANK", rank))  # torchrun's: this process's place on its node
        if payload["device"] == "cpu" and max(payload["counts"]) >= PIN_MIN_POINTS:
            _one_core(local)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        _gloo_bind(payload["loopback"])
        jax.config.update("jax_enable_x64", payload["dtype"] == "float64")
        jax.distributed.initialize(
            coordinator_address=payload["address"],
            coordinator_bind_address=payload["address"],
            num_processes=world,
            process_id=rank,
            local_device_ids=[local] if payload["device"] == "gpu" else None,
            initialization_timeout=INIT_TIMEOUT_S,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
            shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S,
        )
        self.rank = rank
        dtype = np.dtype(payload["dtype"])
        devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
        self.mesh = Mesh(np.array(devices), ("w",))
        counts = tuple(payload["counts"])
        length = max(1, max(counts))  # every shard padded to the longest (JAX shards evenly)
        model = payload["model"]
        features = FEATURES.get(model, lambda x: x)(payload["x"])  # the seed's x², else the rows themselves
        x2 = np.zeros((length, *features.shape[1:]), dtype)
        y = np.zeros(length, dtype)
        x2[: len(features)] = features
        y[: len(features)] = payload["y"]
        sharding = NamedSharding(self.mesh, P("w"))
        self.x2 = jax.make_array_from_process_local_data(sharding, x2, (world * length, *x2.shape[1:]))
        self.y = jax.make_array_from_process_local_data(sharding, y, (world * length,))
        params0 = {name: np.asarray(value, dtype) for name, value in payload["params0"].items()}
        self.shapes = [value.shape for value in params0.values()]
        train = TRAIN.get(model) or partial(_train_model, loss=problems.get(model).loss)
        train = partial(train, params0=params0, lr=dtype.type(payload["lr"]), epochs=payload["epochs"],
                        counts=counts)  # fmt: skip
        self._train = jax.jit(jax.shard_map(train, mesh=self.mesh, in_specs=(P("w"), P("w")), out_specs=P()))
        self._allreduce_fns: dict = {}

    def train(self):
        out = jax.block_until_ready(self._train(self.x2, self.y))
        if self.rank != 0:
            return None
        packed = np.asarray(out.addressable_data(0), dtype=np.float64)  # [every parameter…, final, losses…]
        values, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            values.append(packed[start : start + size].reshape(shape) if shape else float(packed[start]))
            start += size
        return tuple(values), packed[start + 1 :], float(packed[start])

    def measure_allreduce(self, rounds: int) -> float:
        from jax.sharding import PartitionSpec as P

        if rounds not in self._allreduce_fns:
            fn = partial(_allreduces, rounds=rounds)
            self._allreduce_fns[rounds] = jax.jit(jax.shard_map(fn, mesh=self.mesh, in_specs=P("w"), out_specs=P()))
        fn = self._allreduce_fns[rounds]
        jax.block_until_ready(fn(self.x2))  # compiles
        start = time.perf_counter()
        jax.block_until_ready(fn(self.x2))
        return (time.perf_counter() - start) / rounds

    def peak_bytes(self) -> int | None:
        return vm_hwm_bytes()

    def close(self) -> None:
        jax.distributed.shutdown()
