"""The machine record of a saved run: library versions, CPU, GPU, threads, precision switches.

Rules: read, never set: the benchmark processes keep every framework's
defaults, as a user's process does. Written once per file through
pytest-benchmark's machine-info hook (bench.plugin).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

from backends.discovery import catalogue
from bench.compute import matmul_rate
from bench.gpu import gpu_info, precision_settings

LIBRARIES = ("regbench", "numpy", "torch", "jax", "jaxlib", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x",
             "scipy", "pytest-benchmark")  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """Installed version of each library the results depend on (None where absent): regbench's, and every
    plugin's distribution and framework (a distribution named as its import name, where there is one)."""
    found = catalogue()
    plugins = [
        (src.distribution, found.specs[tid].import_name) for tid, src in found.sources.items() if not src.builtin
    ]
    versions = {}
    for dist in dict.fromkeys([*LIBRARIES, *(name for pair in plugins for name in pair)]):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


JAX_ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"


def jax_cpu_dispatch() -> str | None:
    """How this process dispatches JAX's CPU computations ("async", JAX's default, or "inline"); None where this
    process has not imported JAX.

    Read, never set: the benchmark processes keep every framework's defaults, as a user's process does.
    """
    if "jax" not in sys.modules:
        return None
    import jax

    return "async" if jax.config.read(JAX_ASYNC_DISPATCH) else "inline"


#: The vector extensions that decide how wide a compiled loop's arithmetic can be, as /proc/cpuinfo names them.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_fp16",
                "avx512_bf16", "avx_vnni", "amx_tile", "asimd", "sve", "sve2")  # fmt: skip


def last_cache_bytes() -> int | None:
    """The size of the CPU's last-level cache (Linux's /sys; None where it cannot be read): whether a problem's
    data stream from memory or from cache, for the bandwidth floor's targets."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        with contextlib.suppress(ValueError):
            sizes.append(int(size.rstrip("KMG")) * unit)
    return max(sizes, default=None)


def cpu_facts() -> dict:
    """The CPU's model and vector extensions, from Linux's /proc/cpuinfo ({} where it cannot be read), and its
    last-level cache's size."""
    facts: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in ("model name", "cpu family", "model", "Features", "flags") and key not in facts:
                    facts[key] = value
                if not key and facts:  # the first processor's block is enough
                    break
    except OSError:
        return {}
    flags = set((facts.get("flags") or facts.get("Features") or "").split())
    return {"model": facts.get("model name"), "family": facts.get("cpu family"), "model_number": facts.get("model"),
            "vector_extensions": [flag for flag in VECTOR_FLAGS if flag in flags],
            "cache_bytes": last_cache_bytes()}  # fmt: skip


def machine_record() -> dict:
    """What regbench adds to pytest-benchmark's machine_info (records.model.Environment).

    A framework's own facts (threads, devices, dispatch) are read where this process imported it, never by
    importing it here (torch alone costs ~4 s of CPU): under ``regbench run`` each framework's process records
    its own, and regbench.merge unites them.
    """
    info = {
        "versions": library_versions(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_facts(),
        "thread_env": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ
        },
        "matmul": matmul_rate(),  # the compute limit's denominator (bench.compute)
    }
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = torch.version.cuda
    if "jax" in sys.modules:
        import jax

        info["jax_platform"] = jax.default_backend()
        info["jax_devices"] = [str(d) for d in jax.devices()]
        info["jax_cpu_dispatch"] = jax_cpu_dispatch()
    if "numba" in sys.modules:
        import numba

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    gpu = gpu_info()
    if gpu:
        info["gpu"] = gpu  # name, driver, CUDA version, memory, compute capability
        info["precision"] = precision_settings()  # TF32 and matmul-precision switches in force
    return info
