"""PyTorch data-parallel trainers: one worker process per shard, gradients summed by torch.distributed.

Rules: each worker holds one contiguous shard of x and y, computes the loss of
its shard (the seed's and linear's by loops of their own, any other family's
by its module's loss, written once) and, by autograd, that loss's gradient,
and every epoch its parts (the seed's three numbers: loss, ∂w, ∂b) are summed
across workers by one ``all_reduce`` (gloo on the CPU, NCCL on CUDA devices, one device per worker); every worker then
applies the same update as the tutorial's loop. The loss is a sum, so summed
parts are exactly the full gradient: only the order of the additions differs
from a single process. Workers compute on one thread each (the parallelism is
the workers). torchrun's elastic agent starts the workers, on one node as
across nodes (backends._torchrun), and each joins the group by ``env://`` (the
address and port torchrun gives it, rank 0's store); gloo is held to the
loopback interface where every node is this machine; every collective
has a timeout. The coordinator imports torch only to probe availability.
"""

from __future__ import annotations

import datetime
import functools
import os
import time

import array_api_compat
import numpy as np
import torch
import torch.distributed as dist

import problems
from backends._cluster import current
from backends._core import Problem, TrainConfig
from backends._data_parallel import DataParallelFit, Footprint, loopback_interface, shard_payloads
from backends._process_group import vm_hwm_bytes

VARIANTS = {"cpu": ("dp",), "cuda": ("dp",)}
#: The seed's and linear's hand-tuned epoch loops, and the features each reads (the seed's x², once); any other
#: family's workers run its module's loss (``_train_model``): a new family needs no entry here.
TRAIN = {"quadratic": "_train_seed", "linear": "_train_linear"}
FEATURES = {"quadratic": lambda x: (x * x).reshape(-1)}
#: Seconds any rendezvous or collective may wait for a peer before it raises.
COLLECTIVE_TIMEOUT_S = 60
#: One worker's peak memory (see backends._data_parallel.Footprint): 241 MiB idle, ~20× its shard's x more.
FOOTPRINT = Footprint(base=256 * 2**20, per_shard_byte=24)


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no torch data-parallel variant {variant!r} on {device!r}"
    if not dist.is_available():
        return f"no torch.distributed in this build of torch {torch.__version__}"
    if device == "cpu" and not dist.is_gloo_available():
        return f"no gloo backend in this build of torch {torch.__version__}"
    if device == "cuda":
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            return f"no CUDA device (torch {torch.__version__}, {built})"
        if not dist.is_nccl_available():
            return f"no NCCL backend in this build of torch {torch.__version__}"
    return ""


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig) -> DataParallelFit:
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    cluster = current()
    if device == "cuda" and config.workers // (cluster.nnodes if cluster else 1) > torch.cuda.device_count():
        raise ValueError(f"needs one CUDA device per worker: {config.workers} workers, "
                         f"{torch.cuda.device_count()} device(s)")  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if (cluster is None or cluster.loopback) and (lo := loopback_interface()) is not None:
        env["GLOO_SOCKET_IFNAME"] = lo  # gloo's pairs connect over loopback only
    return DataParallelFit(f"{__name__}:Worker", shard_payloads(problem, config, FOOTPRINT, device=device), env,
                           torchrun=True)  # fmt: skip


class Worker:
    """One rank of the group: its shard on its device, and the process group."""

    def __init__(self, rank: int, world: int, payload: dict) -> None:
        torch.set_num_threads(1)
        cuda = payload["device"] == "cuda"
        local = int(os.environ["LOCAL_RANK"])  # torchrun's: this worker's device on its node
        self.device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            init_method="env://",  # rank 0's store, at torchrun's MASTER_ADDR:MASTER_PORT
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S),
            device_id=self.device if cuda else None,
        )
        self.rank = rank
        self.dtype = getattr(torch, payload["dtype"])
        self.x = torch.from_numpy(payload["x"]).to(self.device)  # rows (n, d), the working dtype already
        self.model = payload["model"]
        # The seed's x² once: every epoch reads it (as the tutorial's x.pow(2) does).
        self.x2 = FEATURES.get(self.model, lambda x: x)(self.x)
        self.y = torch.from_numpy(payload["y"]).to(self.device)
        self.params0 = {name: torch.tensor(np.asarray(value), dtype=self.dtype, device=self.device)
                        for name, value in payload["params0"].items()}  # fmt: skip
        self.lr = payload["lr"]
        self.epochs = payload["epochs"]

    def train(self):
        """One whole training; rank 0 returns ``(values, losses, final_loss)`` (module backends._data_parallel)."""
        return getattr(self, TRAIN.get(self.model, "_train_model"))()

    def _train_seed(self):
        """The seed's loop on x² and scalar w, b: the epoch's parts (loss, ∂w, ∂b) summed by one all_reduce."""
        x2, y, lr = self.x2, self.y, self.lr
        w, b = (value.clone().requires_grad_(True) for value in self.params0.values())
        losses = torch.empty(self.epochs, dtype=self.dtype, device=self.device)
        parts = torch.empty(3, dtype=self.dtype, device=self.device)
        for i in range(self.epochs):
            loss = (0.5 * (x2 * w + b - y) ** 2).sum()  # this shard's part of the loss
            loss.backward()
            with torch.no_grad():
                parts[0], parts[1], parts[2] = loss, w.grad, b.grad
                dist.all_reduce(parts)  # the sum over every shard: the full loss and gradient
                losses[i] = parts[0]
                w -= lr * parts[1]
                b -= lr * parts[2]
                w.grad = None
                b.grad = None
        with torch.no_grad():
            final = (0.5 * (x2 * w + b - y) ** 2).sum().reshape(1)
            dist.all_reduce(final)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self.rank != 0:
            return None
        return (w.item(), b.item()), losses.double().cpu().numpy(), final.item()

    def _train_linear(self):
        """Problem linear: the seed's loop on X·θ, the epoch's parts (loss, ∂θ…, ∂b) summed by one all_reduce."""
        x, y, lr = self.x2, self.y, self.lr
        w, b = (value.clone().requires_grad_(True) for value in self.params0.values())
        d = w.numel()
        losses = torch.empty(self.epochs, dtype=self.dtype, device=self.device)
        parts = torch.empty(d + 2, dtype=self.dtype, device=self.device)
        for i in range(self.epochs):
            loss = (0.5 * (x @ w + b - y) ** 2).sum()  # this shard's part of the loss
            loss.backward()
            with torch.no_grad():
                parts[0], parts[1 : d + 1], parts[d + 1] = loss, w.grad, b.grad
                dist.all_reduce(parts)
                losses[i] = parts[0]
                w -= lr * parts[1 : d + 1]
                b -= lr * parts[d + 1]
                w.grad = None
                b.grad = None
        with torch.no_grad():
            final = (0.5 * (x @ w + b - y) ** 2).sum().reshape(1)
            dist.all_reduce(final)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self.rank != 0:
            return None
        return (w.detach().cpu().numpy(), b.item()), losses.double().cpu().numpy(), final.item()

    def _train_model(self):
        """Any other family by its module's loss (written once, problems), as torch-autograd-eager trains it: the
        epoch's parts (loss, every parameter's gradient, flattened in order) summed by one all_reduce."""
        loss, xp, x, y, lr = problems.get(self.model).loss, self.xp, self.x, self.y, self.lr
        params = {name: value.clone().requires_grad_(True) for name, value in self.params0.items()}
        sizes = [p.numel() for p in params.values()]
        losses = torch.empty(self.epochs, dtype=self.dtype, device=self.device)
        parts = torch.empty(1 + sum(sizes), dtype=self.dtype, device=self.device)
        for i in range(self.epochs):
            value = loss(xp, params, x, y)  # this shard's part of the loss
            value.backward()
            with torch.no_grad():
                parts[0] = value
                torch.cat([p.grad.reshape(-1) for p in params.values()], out=parts[1:])
                dist.all_reduce(parts)
                losses[i] = parts[0]
                for p, grad in zip(params.values(), parts[1:].split(sizes), strict=True):
                    p -= lr * grad.view_as(p)
                    p.grad = None
        with torch.no_grad():
            final = loss(xp, params, x, y).reshape(1)
            dist.all_reduce(final)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self.rank != 0:
            return None
        values = tuple(p.detach().cpu().numpy() for p in params.values())
        return values, losses.double().cpu().numpy(), final.item()

    @functools.cached_property
    def xp(self):
        """array-api-compat's torch namespace (taken once, as torch-autograd's model fits take it)."""
        return array_api_compat.array_namespace(self.x)

    def measure_allreduce(self, rounds: int) -> float:
        parts = torch.ones(3, dtype=self.dtype, device=self.device)
        for _ in range(10):  # connections and buffers are set up by the first calls
            dist.all_reduce(parts)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(rounds):
            dist.all_reduce(parts)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - start) / rounds

    def peak_bytes(self) -> int | None:
        return vm_hwm_bytes()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
