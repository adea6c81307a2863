"""Peak memory of one whole fit, on the trainer's device, with how it was measured.

Rules: the peak is what one call adds above what the process held before it;
on the CPU the kernel's high-water mark after handing freed memory back, on a
CUDA device the framework allocator's own peak; where neither can be read the
record says so (``None`` and the reason), never a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import backends
from backends import proc_kib, spec_of
from bench.rounds import SLOW_FIT_S

#: A data-parallel fit's memory is its workers': the benchmark process holds only the shards it sends. The group
#: reports the workers' largest VmHWM (``worker_peak_bytes``) after its rounds; a whole fit() more, to measure the
#: benchmark process, would start a second group of workers (seconds each, 16 of them in a default run).
DISTRIBUTED_MEMORY = (
    "not measured in the benchmark process: a data-parallel fit's memory is its workers' (worker_peak_bytes)"
)
SLOW_FIT_MEMORY = (
    f"not measured at the default depth: a fit slower than {SLOW_FIT_S:g} s (regbench run --full measures it)"
)
CPU_MEMORY_METHOD = "VmHWM after malloc_trim and a reset through /proc/self/clear_refs, in the benchmark process"
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def _host_peak(fn: Callable[[], object]) -> tuple[int | None, str]:
    """Peak resident memory that ``fn()`` adds to the process, in bytes.

    Memory an earlier benchmark freed may still be resident in the allocator's
    free lists, where a new allocation would reuse it unseen: ``malloc_trim``
    hands it back to the kernel first, then the high-water mark is reset to the
    current resident size, so the peak is this call's own.
    """
    try:
        if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
            _LIBC.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = proc_kib("/proc/self/status", "VmRSS")
    except OSError as exc:
        fn()
        return None, f"not measured: resetting the peak resident size failed ({exc})"
    fn()
    return max(0, proc_kib("/proc/self/status", "VmHWM") - before) * 1024, CPU_MEMORY_METHOD


def _torch_cuda_peak(fn: Callable[[], object]) -> tuple[int | None, str]:
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return max(0, torch.cuda.max_memory_allocated() - before), "torch.cuda.max_memory_allocated (caching allocator)"


def peak_memory(trainer: backends.Trainer, fn: Callable[[], object]) -> tuple[int | None, str]:
    """Peak memory one call of ``fn`` adds, on the trainer's device, and how it was measured."""
    if trainer.device == "cpu":
        return _host_peak(fn)
    if spec_of(trainer.id).gpu_runtime == "torch":
        return _torch_cuda_peak(fn)
    fn()
    return None, f"not measured: no allocator statistics read for {trainer.backend} on {trainer.device}"
