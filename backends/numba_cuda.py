"""Numba-CUDA trainer: the same per-sample gradient descent as hand-written CUDA kernels, the GPU limit.

Rules: one pass over the data per epoch computes the loss and both gradients
(``x²`` recomputed from ``x``, so x and y are each read once an epoch), with
arithmetic and accumulators in the working dtype, as in ``numba_native``. Up to
``ONE_BLOCK_MAX_N`` points the whole training is ONE launch: one block, whose
threads sum strided slices and reduce them in shared memory, thread 0 updating
``w, b`` (kept in shared memory) and writing the epoch's loss. Beyond, each
epoch is two launches: a grid-wide pass writing one partial sum per block, and
a one-block reduction that updates ``w, b``. Every sum runs in an order fixed by
``n`` alone (fixed thread strides, tree reductions, no float atomics), so a fit
is bit-reproducible. Losses stay on the device until the run ends; ``run()``
synchronises the device. Needs the ``numba-cuda`` package (Numba's built-in CUDA
target is deprecated), imported only when the trainer is probed or used; with
``NUMBA_ENABLE_CUDASIM=1`` set before that, the kernels run in Numba's CUDA
simulator, which is how they are tested without a GPU.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from backends._core import FitResult, Problem, TrainConfig

# numba-cuda installs itself as numba.cuda. It is a module global, not a local
# import, because the CUDA simulator swaps its fake module in for the globals
# named ``cuda`` while a kernel runs.
cuda = importlib.import_module("numba.cuda") if importlib.util.find_spec("numba_cuda") else None

VARIANTS = {"cuda": ("kernel",)}
NUMBA_CUDA_MISSING = (
    "numba-cuda is not installed (pip install 'numba-cuda[cu13]' or 'numba-cuda[cu12]'; "
    "Numba's built-in CUDA target is deprecated)"
)
#: Up to this many points one block of ``ONE_BLOCK_THREADS`` threads trains in one launch.
#: Not yet measured on a GPU: one block runs on one multiprocessor, which at ~2¹⁵
#: points should still beat two launches an epoch; re-tune on a GPU machine.
ONE_BLOCK_MAX_N = 1 << 15
#: Most threads of the one-launch block (a power of two; at most 1024, CUDA's block limit).
ONE_BLOCK_THREADS = 1024
#: Threads per block of the per-epoch kernels (a power of two).
BLOCK_THREADS = 256
#: Most blocks of the per-epoch pass; beyond ``MAX_BLOCKS × BLOCK_THREADS`` points each thread strides.
MAX_BLOCKS = 1024


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no Numba-CUDA variant {variant!r} on {device!r}"
    if cuda is None:
        return NUMBA_CUDA_MISSING
    try:
        if not cuda.is_available():
            why = " ".join(str(cuda.cuda_error()).split())
            return f"no CUDA device for numba-cuda ({why})" if why else "no CUDA device for numba-cuda"
        if not _simulated() and not _nvvm_found():
            return "numba-cuda needs NVVM to compile kernels, none found (pip install 'numba-cuda[cu13]')"
    except Exception as exc:  # a broken driver or toolkit must read as a reason
        return f"no usable CUDA device for numba-cuda ({type(exc).__name__}: {exc})"
    return ""


def _simulated() -> bool:
    from numba.cuda.core import config

    return bool(config.ENABLE_CUDASIM)


def _nvvm_found() -> bool:
    from numba.cuda.cudadrv import nvvm

    return nvvm.is_available()


def _pow2_at_least(n: int, low: int, high: int) -> int:
    threads = low
    while threads < n and threads < high:
        threads *= 2
    return threads


@functools.cache
def _kernels(dtype_name: str, one_block_threads: int, block_threads: int) -> Any:
    """The kernels for one working dtype and block sizes (shared arrays are sized when compiled)."""
    ftype = numba.from_dtype(np.dtype(dtype_name))

    @cuda.jit
    def one_launch(x, y, w0, b0, lr, half, losses, out):  # pragma: no cover - compiled
        sh = cuda.shared.array((3, one_block_threads), ftype)
        params = cuda.shared.array(2, ftype)
        t = cuda.threadIdx.x
        threads = cuda.blockDim.x
        zero = half - half
        epochs = losses.shape[0]
        if t == 0:
            params[0] = w0
            params[1] = b0
        cuda.syncthreads()
        for epoch in range(epochs + 1):  # the last pass only measures the final loss
            w = params[0]
            b = params[1]
            loss = zero
            grad_w = zero
            grad_b = zero
            for i in range(t, x.shape[0], threads):
                x2 = x[i] * x[i]
                r = x2 * w + b - y[i]
                loss += r * r
                grad_w += r * x2
                grad_b += r
            sh[0, t] = loss
            sh[1, t] = grad_w
            sh[2, t] = grad_b
            cuda.syncthreads()
            # A tree in a fixed order: the same sums every run, whatever the scheduling. (Written
            # out in each kernel: a device function cannot be compiled without a device at hand.)
            s = threads // 2
            while s > 0:
                if t < s:
                    sh[0, t] += sh[0, t + s]
                    sh[1, t] += sh[1, t + s]
                    sh[2, t] += sh[2, t + s]
                cuda.syncthreads()
                s //= 2
            if t == 0:
                if epoch < epochs:
                    losses[epoch] = half * sh[0, 0]
                    params[0] = w - lr * sh[1, 0]
                    params[1] = b - lr * sh[2, 0]
                else:
                    out[0] = w
                    out[1] = b
                    out[2] = half * sh[0, 0]
            # Nobody reads the new w, b or refills the shared sums before thread 0 is done.
            cuda.syncthreads()

    @cuda.jit
    def epoch_pass(x, y, params, partials):  # pragma: no cover - compiled
        sh = cuda.shared.array((3, block_threads), ftype)
        t = cuda.threadIdx.x
        threads = cuda.blockDim.x
        w = params[0]
        b = params[1]
        zero = w - w
        loss = zero
        grad_w = zero
        grad_b = zero
        for i in range(cuda.blockIdx.x * threads + t, x.shape[0], cuda.gridDim.x * threads):
            x2 = x[i] * x[i]
            r = x2 * w + b - y[i]
            loss += r * r
            grad_w += r * x2
            grad_b += r
        sh[0, t] = loss
        sh[1, t] = grad_w
        sh[2, t] = grad_b
        cuda.syncthreads()
        s = threads // 2  # the same tree as in one_launch
        while s > 0:
            if t < s:
                sh[0, t] += sh[0, t + s]
                sh[1, t] += sh[1, t + s]
                sh[2, t] += sh[2, t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            partials[0, cuda.blockIdx.x] = sh[0, 0]
            partials[1, cuda.blockIdx.x] = sh[1, 0]
            partials[2, cuda.blockIdx.x] = sh[2, 0]

    @cuda.jit
    def epoch_update(partials, params, lr, half, losses, out, epoch):  # pragma: no cover - compiled
        sh = cuda.shared.array((3, block_threads), ftype)
        t = cuda.threadIdx.x
        threads = cuda.blockDim.x
        zero = half - half
        loss = zero
        grad_w = zero
        grad_b = zero
        for j in range(t, partials.shape[1], threads):
            loss += partials[0, j]
            grad_w += partials[1, j]
            grad_b += partials[2, j]
        sh[0, t] = loss
        sh[1, t] = grad_w
        sh[2, t] = grad_b
        cuda.syncthreads()
        s = threads // 2  # the same tree as in one_launch
        while s > 0:
            if t < s:
                sh[0, t] += sh[0, t + s]
                sh[1, t] += sh[1, t + s]
                sh[2, t] += sh[2, t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            w = params[0]
            b = params[1]
            if epoch < losses.shape[0]:
                losses[epoch] = half * sh[0, 0]
                params[0] = w - lr * sh[1, 0]
                params[1] = b - lr * sh[2, 0]
            else:
                out[0] = w
                out[1] = b
                out[2] = half * sh[0, 0]

    return one_launch, epoch_pass, epoch_update


@functools.cache
def _linear_kernels(dtype_name: str, block_threads: int) -> Any:
    """Problem linear: three launches an epoch, every sum in a fixed order (no atomics).

    ``residual``: one thread a point, ``r_i = b + Σ_j X_ij·θ_j − y_i`` (the sum over j in order);
    ``reduce``: one block a sum (d gradients ``Σ_i r_i·X_ij``, then ``Σ r_i`` and ``Σ r_i²``), each block's
    threads striding over the points and meeting in a tree in shared memory; ``update``: ``θ, b -= lr·∂``
    and the epoch's loss. A first version: X is read twice an epoch, the reduce's reads of a column are
    strided; not yet the GPU's limit for this problem.
    """
    ftype = numba.from_dtype(np.dtype(dtype_name))

    @cuda.jit
    def residual(x, y, params, r):  # pragma: no cover - compiled
        i = cuda.grid(1)
        if i < x.shape[0]:
            d = x.shape[1]
            acc = params[d]
            for j in range(d):
                acc += x[i, j] * params[j]
            r[i] = acc - y[i]

    @cuda.jit
    def reduce(x, r, sums):  # pragma: no cover - compiled
        sh = cuda.shared.array(block_threads, ftype)
        c = cuda.blockIdx.x
        t = cuda.threadIdx.x
        threads = cuda.blockDim.x
        d = x.shape[1]
        acc = r[0] - r[0]
        for i in range(t, x.shape[0], threads):
            if c < d:
                acc += r[i] * x[i, c]
            elif c == d:
                acc += r[i]
            else:
                acc += r[i] * r[i]
        sh[t] = acc
        cuda.syncthreads()
        s = threads // 2
        while s > 0:
            if t < s:
                sh[t] += sh[t + s]
            cuda.syncthreads()
            s //= 2
        if t == 0:
            sums[c] = sh[0]

    @cuda.jit
    def update(sums, params, lr, half, losses, out, epoch):  # pragma: no cover - compiled
        k = cuda.grid(1)
        loss_at = sums.shape[0] - 1
        if epoch < losses.shape[0]:
            if k < loss_at:
                params[k] -= lr * sums[k]
            if k == 0:
                losses[epoch] = half * sums[loss_at]
        elif k == 0:
            out[0] = half * sums[loss_at]

    return residual, reduce, update


@dataclass
class _LinearFit:
    kernels: Any  # (residual, reduce, update)
    x: Any  # (n, d), working dtype, on the device
    y: Any  # (n,)
    params0: np.ndarray  # [θ…, b], working dtype, on the host
    lr: np.generic
    epochs: int
    block_threads: int
    names: tuple[str, ...]  # the problem's parameters: θ's name, then the intercept's

    def run(self):
        residual, reduce, update = self.kernels
        n, d = self.x.shape
        dtype = self.params0.dtype
        params = cuda.to_device(self.params0)
        r = cuda.device_array(n, dtype)
        sums = cuda.device_array(d + 2, dtype)
        losses = cuda.device_array(self.epochs, np.float64)
        out = cuda.device_array(1, dtype)
        threads = self.block_threads
        resid = residual[-(-n // threads), threads]
        red = reduce[d + 2, threads]
        upd = update[-(-(d + 1) // threads), threads]
        half = dtype.type(0.5)
        for epoch in range(self.epochs + 1):  # the last pass only measures the final loss
            resid(self.x, self.y, params, r)
            red(self.x, r, sums)
            upd(sums, params, self.lr, half, losses, out, epoch)
        cuda.synchronize()
        return params, out, losses

    def result(self, raw) -> FitResult:
        params, out, losses = raw
        host = params.copy_to_host()
        return FitResult.of(self.names, (host[:-1], host[-1]), losses.copy_to_host(), out.copy_to_host()[0])


def ptx(dtype_name: str, cc: tuple[int, int] = (8, 0)) -> dict[str, str]:
    """The PTX of each kernel for compute capability ``cc``: compiles them for a real GPU without needing one.

    Needs NVVM and NVRTC (``pip install 'numba-cuda[cu13]'``), not a driver.
    """
    ftype = numba.from_dtype(np.dtype(dtype_name))
    vec, mat, hist = ftype[::1], ftype[:, ::1], numba.float64[::1]
    signatures = (
        (vec, vec, ftype, ftype, ftype, ftype, hist, vec),  # one_launch
        (vec, vec, vec, mat),  # epoch_pass
        (mat, vec, ftype, ftype, hist, vec, numba.int64),  # epoch_update
    )
    kernels = _kernels(dtype_name, ONE_BLOCK_THREADS, BLOCK_THREADS)
    pairs = zip(kernels, signatures, strict=True)
    return {kernel.py_func.__name__: cuda.compile_ptx(kernel.py_func, sig, cc=cc)[0] for kernel, sig in pairs}


@dataclass
class _Fit:
    kernels: Any  # (one_launch, epoch_pass, epoch_update), compiled on the first run
    x: Any  # (n,), working dtype, device arrays
    y: Any
    w0: np.generic  # working dtype
    b0: np.generic
    lr: np.generic
    epochs: int
    one_block_threads: int  # 0: the per-epoch kernels
    blocks: int
    block_threads: int
    names: tuple[str, ...]  # the problem's parameters: w's name, then the intercept's

    def run(self):
        dtype = self.x.dtype
        one_launch, epoch_pass, epoch_update = self.kernels
        half = dtype.type(0.5)
        losses = cuda.device_array(self.epochs, np.float64)  # float64 holds every float32 loss exactly
        out = cuda.device_array(3, dtype)  # w, b, final loss
        if self.one_block_threads:
            one_launch[1, self.one_block_threads](self.x, self.y, self.w0, self.b0, self.lr, half, losses, out)
        else:
            params = cuda.to_device(np.array([self.w0, self.b0], dtype))
            partials = cuda.device_array((3, self.blocks), dtype)
            pass_, update = epoch_pass[self.blocks, self.block_threads], epoch_update[1, self.block_threads]
            for epoch in range(self.epochs + 1):  # queued on one stream: no epoch waits for the host
                pass_(self.x, self.y, params, partials)
                update(partials, params, self.lr, half, losses, out, epoch)
        cuda.synchronize()
        return out, losses

    def result(self, raw) -> FitResult:
        out, losses = raw
        w, b, final = out.copy_to_host()
        return FitResult.of(self.names, (w, b), losses.copy_to_host(), final)


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    return PREPARE[problem.model](problem, config, np.dtype(config.dtype))


def _prepare_quadratic(problem: Problem, config: TrainConfig, dtype: np.dtype) -> _Fit:
    """The seed's model: one launch of one block up to ONE_BLOCK_MAX_N points, two launches an epoch beyond."""
    w0, b0 = problem.params0.values()
    n = problem.n
    one_block = n <= ONE_BLOCK_MAX_N
    return _Fit(
        kernels=_kernels(dtype.name, ONE_BLOCK_THREADS, BLOCK_THREADS),
        x=cuda.to_device(np.ascontiguousarray(problem.x.astype(dtype).ravel())),
        y=cuda.to_device(np.ascontiguousarray(problem.y.astype(dtype).ravel())),
        w0=dtype.type(w0),
        b0=dtype.type(b0),
        lr=dtype.type(config.lr),
        epochs=config.epochs,
        one_block_threads=_pow2_at_least(n, 32, ONE_BLOCK_THREADS) if one_block else 0,
        blocks=min(MAX_BLOCKS, -(-n // BLOCK_THREADS)),
        block_threads=BLOCK_THREADS,
        names=tuple(problem.params0),
    )


def _prepare_linear(problem: Problem, config: TrainConfig, dtype: np.dtype) -> _LinearFit:
    """Problem linear's model: three launches an epoch (residual, reductions, update)."""
    theta0, b0 = problem.params0.values()
    return _LinearFit(
        kernels=_linear_kernels(dtype.name, BLOCK_THREADS),
        x=cuda.to_device(np.ascontiguousarray(problem.x, dtype=dtype)),
        y=cuda.to_device(np.ascontiguousarray(problem.y.astype(dtype).ravel())),
        params0=np.append(theta0, b0).astype(dtype),
        lr=dtype.type(config.lr),
        epochs=config.epochs,
        block_threads=BLOCK_THREADS,
        names=tuple(problem.params0),
    )


#: The code of each model family (problems.MODELS): a new family is a new entry, never an edit of another's.
PREPARE = {"quadratic": _prepare_quadratic, "linear": _prepare_linear}
