"""regbench's own trainers: the specs its entry point ``regbench.trainers`` names (backends.discovery).

Rules: plain data, importing no framework: a spec's families are its backend module's ``PREPARE`` table's,
read from the module's source (backends.families), never stated here beside it. The built-ins are loaded and
checked by the same code as a plugin's (and from a source checkout that was never pip-installed, by the same
entry point made by hand); only they may hold the reference role, and no plugin may reuse their ids.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.families import families
from backends.spec import TrainerSpec
from records.roles import BASELINE, CPU_LIMIT, GPU_LIMIT, NATIVE_LOOP, REFERENCE

#: The families the data-parallel trainers have hand-tuned loops for: their modules (backends/torch_dp.py,
#: jax_dp.py) have no PREPARE table (their workers pick those loops from a table of their own), so their specs
#: state them; every other family their workers run from its module's loss.
_DATA_PARALLEL = ("quadratic", "linear")
#: The trainers that also run every model family written once against the array API (problems.mlp,
#: problems.logistic, a plugin's): the autodiff trainers differentiate its loss (the data-parallel ones on every
#: worker's shard), NumPy's tutorial loop runs its hand-derived gradient; torch's CUDA graph captures its eager
#: loop. The fused NumPy loops and the native ones run the families of their tables alone.
_WRITTEN_ONCE = {"written_once": True}


def _family(backend: str, method: str, module: str, color: str, **fixed) -> Callable[..., TrainerSpec]:
    """The specs of one framework: its module, its extra of regbench's (``pip install 'regbench[torch]'``), and
    the families its module has code of its own for, the keys of that module's ``PREPARE`` table
    (backends.families: read from its source, importing no framework)."""

    def spec(variant: str, device: str, **kw) -> TrainerSpec:
        kw = {"module": f"backends.{module}", **fixed, **kw}
        if "problems" not in kw:
            kw["problems"] = families(kw["module"])
        return TrainerSpec(backend, method, variant, device, color=color, install=f"pip install 'regbench[{backend}]'",
                           **kw)  # fmt: skip

    return spec


_numpy = _family("numpy", "manual", "numpy_manual", "#4c72b0")
_torch = _family("torch", "autograd", "torch_autograd", "#dd8452")
_jax = _family("jax", "grad", "jax_grad", "#55a868")
_numba = _family("numba", "native", "numba_native", "#8c8c8c", compiles=True)
# Data-parallel: one process per shard, gradients summed by the framework's all-reduce (backends._data_parallel).
_torch_dp = _family("torch", "autograd", "torch_dp", "#dd8452", distributed=True, twin="eager", problems=_DATA_PARALLEL)
_jax_dp = _family("jax", "grad", "jax_dp", "#55a868", compiles=True, distributed=True, twin="scan",
                  problems=_DATA_PARALLEL)  # fmt: skip

TRAINERS = (
    _numpy("tutorial", "cpu", roles=(REFERENCE, BASELINE), **_WRITTEN_ONCE),
    _numpy("fused", "cpu"),
    _numpy("tutorial", "cuda", roles=(BASELINE,), gpu_runtime="cupy", **_WRITTEN_ONCE),  # on CuPy arrays
    _numpy("fused", "cuda", gpu_runtime="cupy"),
    _torch("eager", "cpu", roles=(BASELINE,), **_WRITTEN_ONCE),
    _torch("compiled", "cpu", compiles=True, **_WRITTEN_ONCE),
    _torch("eager", "cuda", roles=(BASELINE,), gpu_runtime="torch", **_WRITTEN_ONCE),
    _torch("compiled", "cuda", compiles=True, gpu_runtime="torch", **_WRITTEN_ONCE),
    _torch("cudagraph", "cuda", compiles=True, gpu_runtime="torch", **_WRITTEN_ONCE),
    _jax("eager", "cpu", roles=(BASELINE,), **_WRITTEN_ONCE),
    _jax("jit", "cpu", compiles=True, **_WRITTEN_ONCE),
    _jax("scan", "cpu", compiles=True, **_WRITTEN_ONCE),
    # JAX has no public event API: its GPU time is the wall time of a run() that blocks until the device is done.
    _jax("eager", "gpu", roles=(BASELINE,), **_WRITTEN_ONCE),
    _jax("jit", "gpu", compiles=True, **_WRITTEN_ONCE),
    _jax("scan", "gpu", compiles=True, **_WRITTEN_ONCE),
    _numba("loop", "cpu", roles=(NATIVE_LOOP,)),
    _numba("simd", "cpu", roles=(CPU_LIMIT,)),
    _numba("kernel", "cuda", roles=(GPU_LIMIT,), module="backends.numba_cuda", gpu_runtime="numba"),
    _torch_dp("dp", "cpu", **_WRITTEN_ONCE),
    _torch_dp("dp", "cuda", gpu_runtime="torch", **_WRITTEN_ONCE),
    _jax_dp("dp", "cpu", **_WRITTEN_ONCE),
    _jax_dp("dp", "gpu", **_WRITTEN_ONCE),
)
