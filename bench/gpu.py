"""GPU facts and device-side timing for the benchmark harness.

Rules: importing this module imports no framework; each function imports the
framework it reads when called, and only if it is installed. The facts
(``gpu_info``, ``precision_settings``) never raise: a missing framework or
device reads as an absent key. ``event_timer`` gives a timer that measures GPU
time between two events recorded on the framework's current stream.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
import shutil
import subprocess
import warnings
from typing import Any, Protocol, runtime_checkable


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cuda_version(encoded: int) -> str:
    """CUDA's integer versions, 13020 → "13.2"."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def _driver_facts() -> dict[str, str]:
    """The driver's own version (nvidia-smi) and the CUDA version it supports (libcuda), where found."""
    facts: dict[str, str] = {}
    try:
        version = ctypes.c_int()
        if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(version)) == 0:
            facts["driver_cuda_version"] = _cuda_version(version.value)
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            facts["driver_version"] = out.stdout.splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return facts


def _has_cuda_driver() -> bool:
    """Whether the CUDA driver library loads: every CUDA device needs it, and loading it imports no framework."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _torch_info() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "total_memory_bytes": int(props.total_memory),
        "cuda_runtime_version": torch.version.cuda,
        "read_through": f"torch {torch.__version__}",
    }


def _cupy_info() -> dict[str, Any]:
    import cupy

    if cupy.cuda.runtime.getDeviceCount() == 0:
        return {}
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "total_memory_bytes": int(props["totalGlobalMem"]),
        "cuda_runtime_version": _cuda_version(cupy.cuda.runtime.runtimeGetVersion()),
        "read_through": f"cupy {cupy.__version__}",
    }


def gpu_info() -> dict[str, Any]:
    """The first CUDA device as torch or cupy (whichever is installed and sees it) reports it; {} without one.

    Keys: ``name``, ``compute_capability``, ``total_memory_bytes``, ``cuda_runtime_version`` (the
    framework's), ``driver_version`` and ``driver_cuda_version`` (where the driver tells), ``read_through``.
    """
    if not _has_cuda_driver():  # no device to find: importing torch to be told so costs ~4 s of CPU
        return {}
    for framework, read in (("torch", _torch_info), ("cupy", _cupy_info)):
        if not _installed(framework):
            continue
        try:
            info = read()
        except Exception:  # no driver, a CPU build, a broken install: not this framework's device then
            continue
        if info:
            return {**info, **_driver_facts()}
    return {}


#: The environment variables that change how a GPU library rounds, orders or reduces float32 arithmetic, and so the
#: results and times of its trainers: TF32 forced on or off under every CUDA library (NVIDIA_TF32_OVERRIDE) or in
#: torch's cuBLAS calls, cuBLAS's workspace (CUBLAS_WORKSPACE_CONFIG: reproducible cuBLAS results), CuPy's TF32 and
#: its reduction back-ends (CUB, cuTENSOR: another summation order), and XLA's flags (--xla_gpu_deterministic_ops...).
PRECISION_ENV = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "CUBLAS_WORKSPACE_CONFIG",
                 "CUBLASLT_WORKSPACE_SIZE", "CUPY_TF32", "CUPY_ACCELERATORS", "XLA_FLAGS")  # fmt: skip


def precision_settings() -> dict[str, Any]:
    """The precision policy in force, for the record: whether float32 matrix products may run in TF32 (torch) or
    at reduced precision (JAX), whether torch insists on deterministic algorithms, and each of PRECISION_ENV
    (None where unset). Read, never set: regbench keeps every framework's defaults.

    None of the trainers multiplies matrices in float32 except torch's eager ``mm`` of an (n, 1) by a
    (1, 1): these settings say whether a GPU could have rounded that product to TF32's 10-bit mantissa.
    """
    facts: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch deprecates reading allow_tf32: a record must not fail on it
        if _installed("torch"):
            try:
                import torch

                facts["torch_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
                facts["torch_cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
                facts["torch_float32_matmul_precision"] = torch.get_float32_matmul_precision()
                precision = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
                if precision is not None:  # torch ≥ 2.9's replacement for allow_tf32
                    facts["torch_matmul_fp32_precision"] = str(precision)
                facts["torch_deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
                facts["torch_cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
                facts["torch_cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
            except Exception:
                pass
        if _installed("jax"):
            try:
                import jax

                # None means JAX's default: on a GPU, float32 dot products may use TF32.
                facts["jax_default_matmul_precision"] = jax.config.jax_default_matmul_precision
            except Exception:
                pass
    facts.update({name: os.environ.get(name) for name in PRECISION_ENV})
    return facts


@runtime_checkable
class DeviceTimer(Protocol):
    """``start()`` and ``mark()`` around work queued on the current stream; ``elapsed()`` is its GPU seconds.

    The time runs from when the GPU reaches the first event to when it reaches the second, so it
    includes any time the GPU waited for the host to queue work (an eager Python loop, say).
    ``mark()`` only records the second event, so that a timed region pays no extra wait;
    ``elapsed()`` waits for it; ``stop()`` is both.
    """

    def start(self) -> None: ...

    def mark(self) -> None: ...

    def elapsed(self) -> float: ...

    def stop(self) -> float: ...


class _Timer:
    """The shared half of the timers: ``stop()`` is ``mark()`` then ``elapsed()``."""

    def stop(self) -> float:
        self.mark()
        return self.elapsed()


class _TorchTimer(_Timer):
    def __init__(self) -> None:
        self._torch = importlib.import_module("torch")
        self._begin: Any = None
        self._end: Any = None

    def start(self) -> None:
        self._begin = self._torch.cuda.Event(enable_timing=True)
        self._begin.record()

    def mark(self) -> None:
        self._end = self._torch.cuda.Event(enable_timing=True)
        self._end.record()

    def elapsed(self) -> float:
        self._end.synchronize()
        return self._begin.elapsed_time(self._end) / 1000.0  # milliseconds


class _CupyTimer(_Timer):
    def __init__(self) -> None:
        self._cupy = importlib.import_module("cupy")
        self._begin: Any = None
        self._end: Any = None

    def start(self) -> None:
        self._begin = self._cupy.cuda.Event()
        self._begin.record()

    def mark(self) -> None:
        self._end = self._cupy.cuda.Event()
        self._end.record()

    def elapsed(self) -> float:
        self._end.synchronize()
        return self._cupy.cuda.get_elapsed_time(self._begin, self._end) / 1000.0  # milliseconds


class _NumbaTimer(_Timer):
    def __init__(self) -> None:
        self._cuda = importlib.import_module("numba.cuda")
        self._begin: Any = None
        self._end: Any = None

    def start(self) -> None:
        self._begin = self._cuda.event(timing=True)
        self._begin.record()  # on the default stream, where the trainer's kernels run

    def mark(self) -> None:
        self._end = self._cuda.event(timing=True)
        self._end.record()

    def elapsed(self) -> float:
        self._end.synchronize()
        return self._cuda.event_elapsed_time(self._begin, self._end) / 1000.0  # milliseconds


#: The event timer of each GPU runtime a spec can name (backends.spec.GPU_RUNTIMES).
_TIMERS = {"torch": _TorchTimer, "cupy": _CupyTimer, "numba": _NumbaTimer}


def event_timer(gpu_runtime: str) -> DeviceTimer | None:
    """A GPU event timer for the trainers whose spec names ``gpu_runtime`` ("torch", "cupy", "numba").

    None for "" (JAX's, which has no public event API, or a plugin's that names none): such a trainer's GPU
    time is its wall time, which is synchronised, since its ``run()`` blocks until the device is done.
    Creating a timer imports the runtime; the events are created at ``start()``, which needs a device.
    """
    if gpu_runtime == "":
        return None
    if gpu_runtime not in _TIMERS:
        raise ValueError(f"no event timer for {gpu_runtime!r}; known: {', '.join(_TIMERS)}")
    return _TIMERS[gpu_runtime]()
