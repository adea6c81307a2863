"""The import check of bench/on_gpu.sh: each package regbench needs, each GPU framework with the devices it sees, the
GPU as regbench records it, and the precision policy in force; exit 1 naming what is missing.

Run as ``python -m bench.gpu_check [--dry-run]``. On the GPU machine every framework must import and see the GPU;
with ``--dry-run`` (a CPU machine standing in for it) only regbench's own requirements must import, and the
frameworks are reported as found.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

from bench.gpu import gpu_info, precision_settings

#: What regbench and its tests import, beyond the frameworks (pydantic and the array API's packages come in carried
#: wheels: bench/gpu_wheels.sh).
REQUIRED = ("numpy", "scipy", "pandas", "matplotlib", "tabulate", "pytest", "pytest_benchmark", "hypothesis",
            "pydantic", "array_api_compat", "array_api_strict")  # fmt: skip


def _torch(torch: Any) -> str:
    if not torch.cuda.is_available():
        raise RuntimeError(f"no CUDA device (torch {torch.__version__}, CUDA {torch.version.cuda})")
    return f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"


def _jax(jax: Any) -> str:
    return ", ".join(str(device) for device in jax.devices("gpu"))  # raises where JAX has no GPU backend


def _cupy(cupy: Any) -> str:
    count = cupy.cuda.runtime.getDeviceCount()
    if not count:
        raise RuntimeError("no CUDA device")
    return f"{count} device(s), CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"


def _numba_cuda(_: Any) -> str:
    from numba import cuda

    if not cuda.is_available():
        raise RuntimeError("no CUDA device for numba-cuda")
    return str(cuda.get_current_device().name)


#: Each GPU framework (its import name) and what it says of its device.
FRAMEWORKS: dict[str, Callable[[Any], str]] = {"torch": _torch, "jax": _jax, "cupy": _cupy, "numba_cuda": _numba_cuda}


def check(dry_run: bool) -> list[str]:
    """Print what imports and what each framework sees; return what is missing (with why)."""
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    missing = []
    for name in (*REQUIRED, "numba", *FRAMEWORKS):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a broken install is as missing as an absent one
            print(f"{name}: cannot be imported ({type(exc).__name__}: {exc})")
            if name in REQUIRED or not dry_run:
                missing.append(name)
            continue
        print(f"{name} {getattr(module, '__version__', '(no version)')} from {getattr(module, '__file__', '?')}")
        if name in FRAMEWORKS:
            try:
                print(f"  device: {FRAMEWORKS[name](module)}")
            except Exception as exc:
                print(f"  device: none ({type(exc).__name__}: {exc})")
                if not dry_run:
                    missing.append(f"{name}'s GPU")
    print(f"gpu_info: {json.dumps(gpu_info())}")
    print(f"precision policy: {json.dumps(precision_settings())}")
    return missing


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--dry-run"]):
        print("usage: python -m bench.gpu_check [--dry-run]", file=sys.stderr)
        return 2
    missing = check(dry_run=bool(args))
    if missing:
        print(f"gpu_check: missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
