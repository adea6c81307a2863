"""PyTorch trainers: gradients by autograd, on the CPU or a CUDA device.

Rules: ``eager`` is the tutorial's loop (``loss.backward()``, in-place updates
under ``no_grad``, gradients zeroed); ``compiled`` is the same step, forward and
backward, from ``torch.func.grad_and_value``, compiled by ``torch.compile``: on
the CPU the whole loop is one compiled call (a ``while_loop`` over ``CHUNK``-epoch
chunks, emitted as C++ by inductor's C++ wrapper), on CUDA, or where that loop
does not compile, ``CHUNK`` epochs to a call from Python; ``cudagraph``
captures the tutorial's whole eager loop, backward passes included, in one CUDA
graph and replays it. Losses stay on the device until the run ends, so no epoch
waits for the host. ``run()`` synchronises the device before it returns. A fit's
bits depend on its problem, dtype, device and thread count only, not on the
sizes a process compiled before, and a fit leaves torch's global state (threads,
default dtype, compiler config, environment) as it found it. The seed's and
linear's steps are written here; every other model family's loss is its module's
(problems: written once against the array API, with array-api-compat's torch
namespace, taken once outside anything compiled), differentiated over its
parameters by name: ``eager`` by ``backward()``, ``compiled`` by
``torch.func.grad_and_value`` in a compiled step called from Python each epoch,
``cudagraph`` by the eager loop captured in one CUDA graph.
(Over 300 lines: one backend module per framework, as every backend; its three
styles share the step.)
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import types
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np
import torch
import torch._inductor.config as inductor_config

import problems
from backends._core import FitResult, Problem, TrainConfig

try:  # a private module: if a torch lacks it, the CPU runs the chunks from Python, as CUDA does
    from torch._higher_order_ops.while_loop import while_loop as _while_loop
except ImportError:
    _while_loop = None

_log = logging.getLogger(__name__)

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
    """The seed's loss on x² (n,) and a scalar w; problem linear's on X (n, d) and θ (d,) (a rank: traced apart)."""
    pred = x2 @ w if x2.dim() == 2 else x2 * w
    return (0.5 * (pred + b - y) ** 2).sum()


_grad_and_loss = torch.func.grad_and_value(_loss, argnums=(0, 1))


def _step(w, b, x2, y, lr):
    (grad_w, grad_b), loss = _grad_and_loss(w, b, x2, y)
    return w - lr * grad_w, b - lr * grad_b, loss


#: Epochs per compiled call from Python, and per iteration of the CPU's compiled
#: loop. A compiled call costs ~25 µs of Python, guard and dispatch overhead on
#: the CPU, more than a 100-point epoch itself, so the compiled variant traces
#: CHUNK steps into one graph (measured per epoch at n=100, float32: 29.5 µs with
#: 1 step a call, 7.0 µs with 8, 4.6 µs with 16). In the C++ loop an iteration
#: costs far less, and 16 is kept: an 800-epoch fit took 0.85 ms with 8 epochs
#: an iteration, 0.83 ms with 16, 0.75 ms with 32 (which compiles ~2× longer).
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
# On the CPU, inductor decides when it compiles whether a kernel splits its sums
# across threads: when n // threads >= cpp.min_chunk_size, n being the size hint
# of the first size compiled for a dynamic n. That kernel then serves every size,
# and the on-disk cache serves it to later processes. A 100-point fit run by a
# kernel compiled for 3000 points summed in two halves, not in order, and its
# loss history differed in the last bits from one compiled for 100 points
# (measured: the process, or cache, that first saw n ≥ 1024 on 2 threads).
# Problems too small to be split run these serial copies instead, so that a
# fit's summation order follows from its own n and the thread count only.


def _loop(w, b, x2, y, lr, losses):
    """Every epoch in one graph: ``_chunk`` while a whole chunk fits, then ``_step``; ``losses`` (epochs,) is filled."""
    epochs = losses.size(0)
    offsets = torch.arange(CHUNK, device=losses.device)

    def chunks_left(i, w, b, losses):
        return i + CHUNK <= epochs

    def chunk(i, w, b, losses):
        w, b, chunk_losses = _chunk(w, b, x2, y, lr)
        return i + CHUNK, w, b, losses.index_put((i + offsets,), chunk_losses)

    def epochs_left(i, w, b, losses):
        return i < epochs

    def step(i, w, b, losses):
        w, b, loss = _step(w, b, x2, y, lr)
        return i + 1, w, b, losses.index_put((i.reshape(1),), loss.reshape(1))

    i = torch.zeros((), dtype=torch.int64, device=losses.device)
    i, w, b, losses = _while_loop(chunks_left, chunk, (i, w, b, losses))
    i, w, b, losses = _while_loop(epochs_left, step, (i, w, b, losses))
    return w, b, losses, _loss(w, b, x2, y)


# On the CPU a fit is one compiled call. The chunks called from Python spend
# most of a 100-point fit between the calls: 2.1 ms an 800-epoch fit (float32;
# 2.2-2.4 ms float64). torch's ``while_loop`` higher-order op keeps the loop in
# the graph, and inductor's C++ wrapper (``cpp_wrapper``) emits it as a C++ loop
# (with the default Python wrapper the loop would run in Python): 0.83 ms
# (float32), 0.89-1.0 ms (float64), medians side by side on 2 shared cores. What
# remains is the wrapper, not the arithmetic: each chunk's 16 steps are one fused
# kernel (~3% of the time, perf), but the wrapper allocates a tensor for each
# step's scalars (w, b, gradients, loss: ~4 an epoch), and malloc/free take ~60%
# of the time, tensor construction ~20%. Getting near the native loop would need
# inductor to keep those scalars in the kernel or plan them into one buffer
# (``memory_planning`` fails to compile a C++ while_loop in torch 2.13).
# The loss history is a carried (epochs,) buffer each iteration writes with
# ``index_put``: a loop body may not write its inputs in place, so inductor
# copies the buffer once a chunk (800 elements per 16 epochs here). The epochs
# that don't fill a chunk run through a second loop of ``_step``, so every epoch
# is computed once. ``scan`` over the epochs (0.93 ms) is no faster, and torch
# 2.11's C++ wrapper fails on it (an assertion on its subgraph's inputs); this
# while_loop compiles on 2.11 and 2.13, with losses, w and b bit for bit those of
# the chunks (tests/test_torch_compiled.py). ``cpp_wrapper`` and ``cpp.threads``
# are per-compile options: inductor's module-level config stays as the user set
# it. The epochs are the length of ``losses``, a shape, dynamic from the first
# compile (see _train_compiled). inductor's FX graph cache skips graphs
# with a while_loop, so a warm process still generates the code (its C++ builds
# are cached): ~4.5 s to a first fit, ~2.5 s for the chunks. CUDA keeps the
# chunks: that path is the one tested on a GPU.


def _compiled(prefix: str, serial: bool) -> tuple[Any, Any, Any]:
    """The loop, a chunk and a step, compiled under code objects of their own named ``prefix…``: dynamo counts
    recompiles per code object (8 by default, then it fails), so each model (the seed's scalar w, linear's θ:
    every d is a shape) and each summation regime gets its own count."""
    threads = {"cpp.threads": 1} if serial else {}
    return (torch.compile(_copy(_loop, f"{prefix}loop"), fullgraph=True, options={"cpp_wrapper": True, **threads}),
            torch.compile(_copy(_chunk, f"{prefix}chunk"), fullgraph=True, options=threads),
            torch.compile(_copy(_step, f"{prefix}step"), fullgraph=True, options=threads))  # fmt: skip


#: (loop, chunk, step) by (the seed's model, serial).
_COMPILED = {(square, serial): _compiled(f"_{'seed' if square else 'linear'}_{'serial' if serial else 'split'}_",
                                         serial) for square in (True, False) for serial in (True, False)}  # fmt: skip
#: Why the CPU runs the chunks from Python instead of the loop, or None while the loop is used (see _give_up_loop).
_loop_failed: str | None = None if _while_loop is not None else "torch has no while_loop higher-order op"


#: What torch's loader of compiled CPU kernels sets in os.environ (see _Fit._run_compiled).
_KERNEL_LOADER_ENV = "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR"


def _give_up_loop(err: Exception) -> None:
    """The loop did not compile on this torch: every later fit runs the chunked graphs (same step, same losses)."""
    global _loop_failed
    _loop_failed = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    _log.warning("torch.compile of the one-graph training loop failed, using %d-epoch chunks: %s", CHUNK, _loop_failed)


def _cpu_parallel_min_n() -> int:
    """The smallest size whose CPU kernels inductor splits across threads (any size hint at or above it splits too)."""
    threads = inductor_config.cpp.threads if inductor_config.cpp.threads > 0 else torch.get_num_threads()
    return inductor_config.cpp.min_chunk_size * threads if threads > 1 else 2**63 - 1


@dataclass
class _Fit:
    variant: str
    x: torch.Tensor  # (n, 1) ((n, d): linear), working dtype, on the device; None for ``compiled``, which reads x2
    y: torch.Tensor  # (n, 1); (n,) for ``compiled``
    w0: torch.Tensor  # (1, 1); (d, 1) for linear
    b0: torch.Tensor
    lr: float
    epochs: int
    names: tuple[str, ...]  # the problem's parameters: its weights (w0), then its intercept (b0)
    x2: torch.Tensor | None = None  # (n,): x², computed once in prepare() for ``compiled``; linear: X (n, d)
    square: bool = True  # the seed's model squares x; problem linear's features are X as it is
    _graph: Any = field(default=None, repr=False)
    _static: tuple = field(default=(), repr=False)

    def run(self):
        return getattr(self, f"_run_{self.variant}")()

    def result(self, raw) -> FitResult:
        w, b, losses, final = raw
        w = w.item() if w.numel() == 1 and self.square else w.detach().cpu().numpy().reshape(-1)
        return FitResult.of(self.names, (w, b.item()), losses.cpu().numpy(), final.item())

    def _eager_loop(self, w, b, losses):
        x, y, lr, square = self.x, self.y, self.lr, self.square
        for i in range(self.epochs):
            y_pred = (x.pow(2) if square else x).mm(w) + b
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
            final = (0.5 * ((x.pow(2) if square else x).mm(w) + b - y) ** 2).sum()
        return final

    def _run_eager(self):
        w = self.w0.clone().requires_grad_(True)
        b = self.b0.clone().requires_grad_(True)
        losses = torch.empty(self.epochs, dtype=self.x.dtype, device=self.x.device)
        final = self._eager_loop(w, b, losses)
        _sync(self.x.device)
        return w, b, losses, final

    def _run_compiled(self, *, chunks: bool = False):
        """The loop in one compiled call on the CPU; the chunks from Python on CUDA, or with ``chunks`` (tests)."""
        # Loading a compiled CPU kernel, torch writes this variable into os.environ for the module's init to
        # read (torch 2.11 and 2.13, for any CPU torch.compile); a fit puts it back as it found it.
        loader_env = os.environ.get(_KERNEL_LOADER_ENV)
        try:
            return self._train_compiled(chunks)
        finally:
            if os.environ.get(_KERNEL_LOADER_ENV) != loader_env:
                if loader_env is None:
                    del os.environ[_KERNEL_LOADER_ENV]
                else:
                    os.environ[_KERNEL_LOADER_ENV] = loader_env

    def _train_compiled(self, chunks: bool):
        x2, y = self.x2, self.y
        w, b = self.w0.reshape(() if self.square else (-1,)), self.b0.reshape(())
        serial = x2.device.type == "cpu" and len(x2) < _cpu_parallel_min_n()
        lr = torch.tensor(self.lr, dtype=x2.dtype, device=x2.device)
        losses = torch.empty(self.epochs, dtype=x2.dtype, device=x2.device)
        loop, chunk, step = _COMPILED[(self.square, serial)]
        if x2.device.type == "cpu" and _loop_failed is None and not chunks:
            # The epochs (losses' length) are dynamic from the first compile, and so is n where kernels split: a
            # second epoch count or size recompiled the whole loop (20-34 s on 2 cores) before dynamo made it
            # dynamic itself, and the kernel that served a size depended on the sizes compiled before it. The
            # serial sizes keep a static n, whose kernels the headline n = 100 fit runs (same bits, same speed
            # with the epochs dynamic: measured 2026-12-02).
            torch._dynamo.mark_dynamic(losses, 0)
            if not serial:
                torch._dynamo.mark_dynamic(x2, 0)
                torch._dynamo.mark_dynamic(y, 0)
            try:
                return loop(w, b, x2, y, lr, losses)
            except torch._dynamo.exc.TorchDynamoException as err:
                _give_up_loop(err)
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
        loss = (0.5 * ((self.x.pow(2) if self.square else self.x).mm(w) + b - self.y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w.grad.zero_()
            b.grad.zero_()


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    prepare_family = PREPARE.get(problem.model, _prepare_model)
    return prepare_family(variant, torch.device(device), getattr(torch, config.dtype), problem, config)


def _prepare_quadratic(variant: str, dev: torch.device, dtype: torch.dtype, problem: Problem, config: TrainConfig):
    """The seed's model: x (n, 1) squared in the loop (``compiled``: x² (n,) once, y (n,)), a scalar weight."""
    w0, b0 = problem.params0.values()
    # astype() copies into writable memory, which torch.from_numpy requires.
    y = torch.from_numpy(problem.y.astype(config.dtype)).to(dev)
    if variant == "compiled":
        # x² once, straight into new memory: x cast to the working dtype, then squared, as x.pow(2) would.
        # Squared per fit instead, a 10⁷-point fit paid another pass over memory and a page-faulted buffer.
        x2 = torch.from_numpy(np.square(problem.x.ravel(), dtype=config.dtype)).to(dev)
        x, y = None, y.reshape(-1)
    else:
        x, x2 = torch.from_numpy(problem.x.astype(config.dtype)).to(dev), None
    return _Fit(
        variant=variant,
        x=x,
        y=y,
        x2=x2,
        w0=torch.full((1, 1), float(w0), dtype=dtype, device=dev),
        b0=torch.full((1, 1), float(b0), dtype=dtype, device=dev),
        lr=config.lr,
        epochs=config.epochs,
        names=tuple(problem.params0),
    )


def _prepare_linear(variant: str, dev: torch.device, dtype: torch.dtype, problem: Problem, config: TrainConfig):
    """Problem linear: X (n, d) as the features of every style, θ (d, 1) (``compiled``: (d,), y (n,))."""
    theta0, b0 = problem.params0.values()
    x = torch.from_numpy(np.array(problem.x, dtype=config.dtype, order="C")).to(dev)  # a writable copy
    y = torch.from_numpy(problem.y.astype(config.dtype)).to(dev)
    w0 = torch.from_numpy(theta0.astype(config.dtype).reshape(-1, 1)).to(dev)
    b0 = torch.full((1, 1), float(b0), dtype=dtype, device=dev)
    common = {"w0": w0, "b0": b0, "lr": config.lr, "epochs": config.epochs, "names": tuple(problem.params0),
              "square": False}  # fmt: skip
    if variant == "compiled":
        return _Fit(variant=variant, x=None, y=y.reshape(-1), x2=x, **common)
    return _Fit(variant=variant, x=x, y=y, **common)


@functools.cache
def _model_step(loss, dtype: torch.dtype, device: torch.device) -> Any:
    """A model's compiled step for ``loss(xp, params, x, y)``, over its parameters (a dict), compiled under a code
    object of its own per model, dtype and device, so that each keeps its own recompile count (dynamo allows 8 a
    code object; sizes are made dynamic from the second one). One step a graph: a model's epoch does far more
    than the ~25 µs a call costs, and a graph of CHUNK steps took 40-80 s to compile on 2 cores (mlp and
    logistic, 2026-12-03), against seconds for one."""
    xp = array_api_compat.array_namespace(torch.empty(0))  # outside anything traced: dynamo warns on the lookup
    grad_and_value = torch.func.grad_and_value(lambda params, x, y: loss(xp, params, x, y))

    def step(params, x, y, lr):
        grads, value = grad_and_value(params, x, y)
        return {name: p - lr * grads[name] for name, p in params.items()}, value

    name = f"_{loss.__module__.replace('.', '_')}_{str(dtype).removeprefix('torch.')}_{device.type}_step"
    return torch.compile(_copy(step, name), fullgraph=True)


@dataclass
class _ModelFit:
    """Any model family by its module's loss (problems), differentiated by torch: ``eager`` (the tutorial's loop:
    ``backward()``, in-place updates under ``no_grad``), ``compiled`` (a compiled step an epoch) or ``cudagraph``
    (the eager loop, every epoch's backward pass included, captured once in one CUDA graph and replayed)."""

    variant: str
    xp: Any  # array-api-compat's torch namespace, taken once in prepare()
    loss: Any
    x: torch.Tensor  # (n, d), working dtype, on the device
    y: torch.Tensor  # (n,)
    params0: dict  # every parameter by name, working dtype, on the device
    lr: float
    epochs: int
    _graph: Any = field(default=None, repr=False)
    _static: tuple = field(default=(), repr=False)

    def run(self):
        if self.variant == "cudagraph":
            return self._run_cudagraph()
        losses = torch.empty(self.epochs, dtype=self.x.dtype, device=self.x.device)
        if self.variant == "compiled":
            params = self._run_compiled(losses)
            with torch.no_grad():
                final = self.loss(self.xp, params, self.x, self.y)
        else:
            params = {name: value.clone().requires_grad_(True) for name, value in self.params0.items()}
            final = self._eager_loop(params, losses)
        _sync(self.x.device)
        return params, losses, final

    def _eager_loop(self, params: dict, losses: torch.Tensor) -> torch.Tensor:
        """The tutorial's loop over ``params`` (leaves that require grad), each epoch's loss into ``losses``; the
        final loss. ``eager`` runs it, ``cudagraph`` captures it."""
        xp = self.xp
        for i in range(self.epochs):
            value = self.loss(xp, params, self.x, self.y)
            value.backward()
            with torch.no_grad():
                for p in params.values():
                    p -= self.lr * p.grad
                    p.grad.zero_()
                losses[i] = value
        with torch.no_grad():
            return self.loss(xp, params, self.x, self.y)

    def _run_cudagraph(self):
        if self._graph is None:
            self._capture()
        params, losses, final = self._static
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.params0[name])
        self._graph.replay()
        # The graph's outputs are static buffers that the next replay overwrites: hand out copies.
        out = ({name: p.detach().clone() for name, p in params.items()}, losses.clone(), final.clone())
        _sync(self.x.device)
        return out

    def _capture(self) -> None:
        """As the seed's ``_Fit._capture``: warm up on a side stream (autograd, cuBLAS, the allocator and every
        parameter's ``.grad`` set up before capture), then capture the whole loop on that stream."""
        params = {name: value.clone().requires_grad_(True) for name, value in self.params0.items()}
        losses = torch.empty(self.epochs, dtype=self.x.dtype, device=self.x.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.loss(self.xp, params, self.x, self.y).backward()
                with torch.no_grad():
                    for p in params.values():
                        p.grad.zero_()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            final = self._eager_loop(params, losses)
        self._graph, self._static = graph, (params, losses, final)

    def _run_compiled(self, losses: torch.Tensor) -> dict:
        step = _model_step(self.loss, self.x.dtype, self.x.device)
        params, (x, y) = dict(self.params0), (self.x, self.y)
        lr = torch.tensor(self.lr, dtype=x.dtype, device=x.device)  # a tensor: a new lr compiles nothing
        for i in range(self.epochs):
            params, losses[i] = step(params, x, y, lr)
        return params

    def result(self, raw) -> FitResult:
        params, losses, final = raw
        params = {name: value.detach().cpu().numpy() for name, value in params.items()}
        return FitResult.from_arrays(params, losses.cpu().numpy(), final.item())


def _prepare_model(variant: str, dev: torch.device, dtype: torch.dtype, problem: Problem, config: TrainConfig):
    """A model family by its module alone: its loss, written once against the array API, and torch's gradient."""
    if variant not in ("eager", "compiled", "cudagraph"):
        raise ValueError(f"no torch variant {variant!r} for model {problem.model!r}: eager, compiled and cudagraph "
                         "run it")  # fmt: skip
    x = torch.from_numpy(np.array(problem.x, dtype=config.dtype, order="C")).to(dev)  # a writable copy
    y = torch.from_numpy(problem.y.astype(config.dtype).ravel()).to(dev)
    params0 = {name: torch.from_numpy(np.array(value, dtype=config.dtype)).to(dev)
               for name, value in problem.params0.items()}  # fmt: skip
    xp = array_api_compat.array_namespace(x)
    return _ModelFit(variant, xp, problems.get(problem.model).loss, x, y, params0, config.lr, config.epochs)


#: The code of each model family (problems.MODELS): a new family is a new entry, never an edit of another's. The
#: seed's and linear's steps are hand-tuned here; any other family (``written_once``) runs its module's loss.
PREPARE = {"quadratic": _prepare_quadratic, "linear": _prepare_linear}
