"""PyTorch trainers: gradients by autograd, on the CPU or a CUDA device.

Rules: ``eager`` is the tutorial's loop (``loss.backward()``, in-place updates
under ``no_grad``, gradients zeroed); ``compiled`` is the same step, forward and
backward, from ``torch.func.grad_and_value``, compiled by ``torch.compile``
``CHUNK`` epochs to a call; ``cudagraph`` captures the tutorial's whole eager
loop, backward passes included, in one CUDA graph and replays it. Losses stay
on the device until the run ends, so no epoch waits for the host. ``run()``
synchronises the device before it returns. A fit's bits depend on its problem,
dtype, device and thread count only, not on the sizes a process compiled before.
"""

from __future__ import annotations

import shutil
import types
from dataclasses import dataclass, field
from typing import Any

import torch
import torch._inductor.config as inductor_config

from backends._core import FitResult, Problem, TrainConfig

VARIANTS = {"cpu": ("eager", "compiled"), "cuda": ("eager", "compiled", "cudagraph")}


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no torch variant {variant!r} on {device!r}"
    if device == "cuda" and not torch.cuda.is_available():
        built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        return f"no CUDA device (torch {torch.__version__}, {built})"
    if variant == "compiled" and device == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
        return "torch.compile on the CPU needs a C++ compiler (g++), none on PATH"
    return ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loss(w: torch.Tensor, b: torch.Tensor, x2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (0.5 * (x2 * w + b - y) ** 2).sum()


_grad_and_loss = torch.func.grad_and_value(_loss, argnums=(0, 1))


def _step(w, b, x2, y, lr):
    (grad_w, grad_b), loss = _grad_and_loss(w, b, x2, y)
    return w - lr * grad_w, b - lr * grad_b, loss


#: Epochs per compiled call. A compiled call costs ~25 µs of Python, guard and
#: dispatch overhead on the CPU, more than a 100-point epoch itself, so the
#: compiled variant traces CHUNK steps into one graph (measured per epoch at
#: n=100, float32: 29.5 µs with 1 step a call, 7.0 µs with 8, 4.6 µs with 16).
CHUNK = 16


def _chunk(w, b, x2, y, lr):
    losses = []
    for _ in range(CHUNK):
        w, b, loss = _step(w, b, x2, y, lr)
        losses.append(loss)
    return w, b, torch.stack(losses)


def _copy(fn, name: str):
    """``fn`` under its own code object: dynamo keeps its cache entries (and counts recompiles) per code object."""
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


# Compiled once for every fit: dynamo caches by code object and guards on dtype,
# device, thread count and shape (a second size seen makes n dynamic). lr is
# passed as a tensor so that a new learning rate does not recompile. The
# remainder of epochs % CHUNK runs through the one-step graph.
_compiled_chunk = torch.compile(_chunk, fullgraph=True)
_compiled_step = torch.compile(_step, fullgraph=True)
# On the CPU, inductor decides when it compiles whether a kernel splits its sums
# across threads: when n // threads >= cpp.min_chunk_size, n being the size hint
# of the first size compiled for a dynamic n. That kernel then serves every size,
# and the on-disk cache serves it to later processes. A 100-point fit run by a
# kernel compiled for 3000 points summed in two halves, not in order, and its
# loss history differed in the last bits from one compiled for 100 points
# (measured: the process, or cache, that first saw n ≥ 1024 on 2 threads).
# Problems too small to be split run these serial copies instead, so that a
# fit's summation order follows from its own n and the thread count only.
_serial_chunk = torch.compile(_copy(_chunk, "_serial_chunk"), fullgraph=True, options={"cpp.threads": 1})
_serial_step = torch.compile(_copy(_step, "_serial_step"), fullgraph=True, options={"cpp.threads": 1})


def _cpu_parallel_min_n() -> int:
    """The smallest size whose CPU kernels inductor splits across threads (any size hint at or above it splits too)."""
    threads = inductor_config.cpp.threads if inductor_config.cpp.threads > 0 else torch.get_num_threads()
    return inductor_config.cpp.min_chunk_size * threads if threads > 1 else 2**63 - 1


@dataclass
class _Fit:
    variant: str
    x: torch.Tensor  # (n, 1), working dtype, on the device
    y: torch.Tensor
    w0: torch.Tensor  # (1, 1)
    b0: torch.Tensor
    lr: float
    epochs: int
    _graph: Any = field(default=None, repr=False)
    _static: tuple = field(default=(), repr=False)

    def run(self):
        return getattr(self, f"_run_{self.variant}")()

    def result(self, raw) -> FitResult:
        w, b, losses, final = raw
        return FitResult.from_arrays(w.item(), b.item(), losses.cpu().numpy(), final.item())

    def _eager_loop(self, w, b, losses):
        x, y, lr = self.x, self.y, self.lr
        for i in range(self.epochs):
            y_pred = x.pow(2).mm(w) + b
            loss = 0.5 * (y_pred - y) ** 2
            loss = loss.sum()
            loss.backward()
            with torch.no_grad():
                w -= lr * w.grad
                b -= lr * b.grad
                w.grad.zero_()
                b.grad.zero_()
                losses[i] = loss
        with torch.no_grad():
            final = (0.5 * (x.pow(2).mm(w) + b - y) ** 2).sum()
        return final

    def _run_eager(self):
        w = self.w0.clone().requires_grad_(True)
        b = self.b0.clone().requires_grad_(True)
        losses = torch.empty(self.epochs, dtype=self.x.dtype, device=self.x.device)
        final = self._eager_loop(w, b, losses)
        _sync(self.x.device)
        return w, b, losses, final

    def _run_compiled(self):
        x2, y = self.x.pow(2).reshape(-1), self.y.reshape(-1)
        w, b = self.w0.reshape(()), self.b0.reshape(())
        lr = torch.tensor(self.lr, dtype=x2.dtype, device=x2.device)
        losses = torch.empty(self.epochs, dtype=x2.dtype, device=x2.device)
        chunk, step = _compiled_chunk, _compiled_step
        if x2.device.type == "cpu" and len(x2) < _cpu_parallel_min_n():
            chunk, step = _serial_chunk, _serial_step
        full = self.epochs - self.epochs % CHUNK
        for i in range(0, full, CHUNK):
            w, b, losses[i : i + CHUNK] = chunk(w, b, x2, y, lr)
        for i in range(full, self.epochs):
            w, b, losses[i] = step(w, b, x2, y, lr)
        final = _loss(w, b, x2, y)
        _sync(x2.device)
        return w, b, losses, final

    def _run_cudagraph(self):
        if self._graph is None:
            self._capture()
        w, b, losses, final = self._static
        with torch.no_grad():
            w.copy_(self.w0)
            b.copy_(self.b0)
        self._graph.replay()
        # The graph's outputs are static buffers that the next replay overwrites: hand out copies.
        out = tuple(t.detach().clone() for t in (w, b, losses, final))
        _sync(self.x.device)
        return out

    def _capture(self) -> None:
        w = self.w0.clone().requires_grad_(True)
        b = self.b0.clone().requires_grad_(True)
        losses = torch.empty(self.epochs, dtype=self.x.dtype, device=self.x.device)
        # Warm up on a side stream so autograd, cuBLAS and the allocator have set up
        # their state before capture, as torch.cuda.graph's documentation asks; capture
        # on that same stream, since cuBLAS keeps its handles per stream.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._eager_loop_once(w, b)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            final = self._eager_loop(w, b, losses)
        self._graph, self._static = graph, (w, b, losses, final)

    def _eager_loop_once(self, w, b) -> None:
        loss = (0.5 * (self.x.pow(2).mm(w) + b - self.y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w.grad.zero_()
            b.grad.zero_()


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    dev = torch.device(device)
    dtype = getattr(torch, config.dtype)
    return _Fit(
        variant=variant,
        # astype() copies into writable memory, which torch.from_numpy requires.
        x=torch.from_numpy(problem.x.astype(config.dtype)).to(dev),
        y=torch.from_numpy(problem.y.astype(config.dtype)).to(dev),
        w0=torch.full((1, 1), problem.w0, dtype=dtype, device=dev),
        b0=torch.full((1, 1), problem.b0, dtype=dtype, device=dev),
        lr=config.lr,
        epochs=config.epochs,
    )
