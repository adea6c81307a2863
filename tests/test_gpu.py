"""The CUDA trainers and the GPU helpers, with and without a GPU.

Tests marked ``gpu`` need a CUDA device and skip with the registry's reason
where there is none. The rest run anywhere: the Numba-CUDA kernel in Numba's
CUDA simulator (in a subprocess, since the simulator is chosen when numba.cuda
is first imported) and compiled to PTX for a real GPU, the CuPy code path of
the NumPy trainers on a NumPy stand-in for CuPy, the reasons given without a
GPU, and the GPU helpers' answers without one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import backends
from backends import spec_of, specs
from backends.metrics import reference_fit
from backends.spec import GPU_RUNTIMES
from bench import gpu
from bench.params import require_trainer, trainer_params
from regbench.conformance.checks import assert_agrees, fingerprint

ROOT = Path(__file__).resolve().parents[1]
NUMPY_CUDA = ("numpy-manual-tutorial-cuda", "numpy-manual-fused-cuda")
KERNEL = "numba-native-kernel-cuda"
CUDA_IDS = (*NUMPY_CUDA, KERNEL)
CUPY_MISSING = "cupy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"


# --- On a CUDA device ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 1000, 1 << 15, (1 << 15) + 1, 200_003], ids=lambda n: f"n{n}")
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(CUDA_IDS))
def test_fit_on_device_across_sizes(trainer, dtype, n):
    """Both kernel paths (one launch up to 2¹⁵ points, two launches an epoch beyond) and CuPy's reductions."""
    problem = backends.make_problem(n, 17)
    config = backends.TrainConfig(epochs=50, lr=0.1 / n, dtype=dtype)
    first, second = trainer.fit(problem, config), trainer.fit(problem, config)
    assert_agrees(first, reference_fit(problem, config), dtype, n)
    assert first.losses.tobytes() == second.losses.tobytes()  # bit-reproducible: no float atomics
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.gpu
@pytest.mark.parametrize("trainer_id", CUDA_IDS)
def test_run_returns_once_the_device_is_done(trainer_id):
    """The GPU time between events around ``run()`` fits inside its wall time: nothing is left running."""
    trainer = require_trainer(trainer_id)
    prepared = trainer.prepare(backends.seed_problem(), backends.TrainConfig(dtype="float32"))
    prepared.run()  # compiles
    timer = gpu.event_timer(spec_of(trainer_id).gpu_runtime)
    timer.start()
    begin = time.perf_counter()
    raw = prepared.run()
    wall = time.perf_counter() - begin
    device = timer.stop()
    assert 0 < device <= wall * 1.05 + 1e-4
    assert not prepared.result(raw).diverged


@pytest.mark.gpu
def test_gpu_info_on_a_gpu():
    info = gpu.gpu_info()
    if not info:
        pytest.skip("no CUDA device seen by torch or cupy")
    assert info["name"]
    assert info["total_memory_bytes"] > 0
    major, _ = (int(part) for part in info["compute_capability"].split("."))
    assert major >= 3
    assert info["cuda_runtime_version"]


# --- The Numba-CUDA kernel in the CUDA simulator --------------------------------------------------------------

#: The simulator runs every GPU thread as a Python thread: small problems, few epochs.
SIM_CASES = [
    {"n": 1, "seed": 1, "epochs": 8, "lr": 0.1},
    {"n": 100, "seed": 100, "epochs": 20, "lr": 1e-3},  # the tutorial's problem and lr, 128 threads
    {"n": 300, "seed": 2, "epochs": 10, "lr": 0.1 / 300, "ONE_BLOCK_THREADS": 64},  # ~5 points a thread
    # The per-epoch kernels: just past the threshold (one block), then 4 blocks whose threads stride.
    {"n": 17, "seed": 3, "epochs": 10, "lr": 0.1 / 17, "ONE_BLOCK_MAX_N": 16, "BLOCK_THREADS": 32},
    {"n": 300, "seed": 4, "epochs": 10, "lr": 0.1 / 300, "ONE_BLOCK_MAX_N": 16, "BLOCK_THREADS": 32, "MAX_BLOCKS": 4},
]
SIM_PATHS = ["one launch", "one launch", "one launch", "1 blocks an epoch", "4 blocks an epoch"]
SIM_IDS = ["n1", "tutorial-n100", "n300-strided", "n17-per-epoch", "n300-per-epoch-4-blocks"]
#: lr·λmax ≈ 11 on 200 points: each epoch overshoots ~10×, a diverged result on both paths.
DIVERGING = {
    "n": 200,
    "seed": 0,
    "epochs": 8,
    "lr": 0.05,
    "ONE_BLOCK_THREADS": 64,
    "BLOCK_THREADS": 32,
    "MAX_BLOCKS": 4,
}


def _cases() -> list[dict]:
    cases = [{**case, "dtype": dtype, "runs": 2} for case in SIM_CASES for dtype in backends.DTYPES]
    cases += [
        {**DIVERGING, "dtype": dtype, "ONE_BLOCK_MAX_N": limit} for dtype in backends.DTYPES for limit in (16, 1 << 15)
    ]
    return cases


@pytest.fixture(scope="module")
def simulated():
    """Every simulator case, run in one subprocess (starting the simulator takes seconds)."""
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed (pip install 'numba-cuda[cu13]')")
    cases = _cases()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "tests.cudasim_fits"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
        check=True,
    )
    results = json.loads(out.stdout)
    assert isinstance(results, list), results  # the simulator must be available wherever numba-cuda is
    return dict(zip((json.dumps(case, sort_keys=True) for case in cases), results, strict=True))


def _result(run: dict) -> backends.FitResult:
    return backends.FitResult.from_arrays(run["params"], run["losses"], run["final_loss"])


@pytest.mark.slow  # Numba's CUDA simulator, in a subprocess
@pytest.mark.parametrize("dtype", backends.DTYPES)
@pytest.mark.parametrize(("case", "path"), list(zip(SIM_CASES, SIM_PATHS, strict=True)), ids=SIM_IDS)
def test_kernel_in_simulator_agrees(simulated, case, path, dtype):
    got = simulated[json.dumps({**case, "dtype": dtype, "runs": 2}, sort_keys=True)]
    assert got["path"] == path
    problem = backends.make_problem(case["n"], case["seed"])
    config = backends.TrainConfig(epochs=case["epochs"], lr=case["lr"], dtype=dtype)
    first, second = (_result(run) for run in got["runs"])
    assert_agrees(first, reference_fit(problem, config), dtype, problem.n)
    # A second run of the same prepared fit starts again from w0, b0, and gives the same bits.
    assert first.losses.tobytes() == second.losses.tobytes()
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.slow  # Numba's CUDA simulator, in a subprocess
@pytest.mark.parametrize("dtype", backends.DTYPES)
@pytest.mark.parametrize("limit", [16, 1 << 15], ids=["per-epoch-kernels", "one-launch"])
def test_kernel_in_simulator_reports_divergence(simulated, dtype, limit):
    got = simulated[json.dumps({**DIVERGING, "dtype": dtype, "ONE_BLOCK_MAX_N": limit}, sort_keys=True)]
    assert got["path"] == ("4 blocks an epoch" if limit == 16 else "one launch")
    (run,) = got["runs"]
    assert run["diverged"] is True
    assert len(run["losses"]) == DIVERGING["epochs"]
    assert np.isfinite(run["final_loss"])
    assert run["losses"][-1] > 1e6 * run["losses"][0]


#: A PTX atomic or reduction-to-memory instruction, predicated or not.
ATOMIC = re.compile(r"^\s*(@!?%p\d+\s+)?(atom|red)\.", re.MULTILINE)
F64_ARITHMETIC = re.compile(r"\b(add|sub|mul|fma\.rn)\.f64\b")


def test_kernel_compiles_for_a_gpu():
    """NVVM compiles each kernel to PTX without a GPU; the sums use barriers, never atomics (bit-reproducible)."""
    numba_cuda = pytest.importorskip("backends.numba_cuda")
    if numba_cuda.cuda is None:
        pytest.skip(numba_cuda.NUMBA_CUDA_MISSING)
    for dtype in backends.DTYPES:
        try:
            kernels = numba_cuda.ptx(dtype)
        except Exception as exc:
            if "NVVM" in str(exc) or "nvrtc" in str(exc) or "DynamicLibNotFound" in type(exc).__name__:
                pytest.skip(f"no NVVM/NVRTC to compile with (pip install 'numba-cuda[cu13]'): {exc}")
            raise
        assert set(kernels) == {"one_launch", "epoch_pass", "epoch_update"}
        for name, code in kernels.items():
            assert ".entry" in code, name
            assert "bar.sync" in code, name
            assert not ATOMIC.search(code), name
            # Arithmetic in the working dtype: a float32 kernel only widens each loss to store it.
            assert bool(F64_ARITHMETIC.search(code)) == (dtype == "float64"), name


# --- The CuPy code path of the NumPy trainers, on a NumPy stand-in ---------------------------------------------


class _Device:
    synchronised = 0

    def synchronize(self) -> None:
        _Device.synchronised += 1


def _stand_in() -> types.ModuleType:
    """NumPy, dressed as CuPy: what the CUDA trainers use of cupy beyond NumPy's API (asnumpy, device sync)."""
    module = types.ModuleType("cupy_stand_in")
    module.__getattr__ = lambda name: getattr(np, name)
    module.asnumpy = np.array
    module.cuda = types.SimpleNamespace(Device=_Device)
    return module


def fit_on_stand_in(variant: str, problem: backends.Problem, config: backends.TrainConfig):
    """A CuPy trainer's fit on the NumPy stand-in, checked to synchronise once a run, and the CPU trainer's fit."""
    from backends.numpy_manual import prepare_on

    prepared = prepare_on(_stand_in(), variant, problem, config)
    before = _Device.synchronised
    got = prepared.result(prepared.run())
    assert _Device.synchronised == before + 1
    return got, backends.get_trainer(f"numpy-manual-{variant}-cpu").fit(problem, config)


@pytest.mark.parametrize("variant", ["tutorial", "fused"])
@pytest.mark.parametrize("dtype", backends.DTYPES)
def test_cuda_code_path_is_the_cpu_code(variant, dtype, seed):
    """Through the CUDA branches (0-d device scalars, no errstate, one sync a run, one copy to the host),
    the loop gives the CPU trainer's bits."""
    config = backends.TrainConfig(epochs=200, dtype=dtype)
    got, want = fit_on_stand_in(variant, seed, config)
    assert got.losses.tobytes() == want.losses.tobytes()
    assert fingerprint(got) == fingerprint(want)
    assert_agrees(got, reference_fit(seed, config), dtype, seed.n)


# --- Without a GPU: reasons, and the helpers' answers ---------------------------------------------------------


def _no_gpu() -> None:
    if any(backends.available()[tid].ok for tid in CUDA_IDS) or gpu.gpu_info():
        pytest.skip("a CUDA device is present")


def test_regbench_list_shows_cuda_trainers_with_their_reason(capsys):
    from regbench.cli import main

    _no_gpu()
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for tid in CUDA_IDS:
        assert lines[tid].split(None, 1)[1].startswith("unavailable: ")
        assert backends.available()[tid].reason in lines[tid]
    kernel_reason = backends.available()[KERNEL].reason
    if importlib.util.find_spec("numba_cuda") is None:
        assert kernel_reason.startswith("numba-cuda is not installed")
    else:
        assert kernel_reason.startswith("no CUDA device for numba-cuda (")
    cupy_reason = backends.available()[NUMPY_CUDA[0]].reason
    if importlib.util.find_spec("cupy") is None:
        assert cupy_reason == CUPY_MISSING
    else:
        assert cupy_reason.startswith("no CUDA device")


def _pretend_cupy(monkeypatch, spec) -> None:
    """Make ``importlib.util.find_spec("cupy")`` answer ``spec`` (None: not installed)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: spec if name == "cupy" else real(name, *args))


def test_reasons_when_the_packages_are_missing(monkeypatch):
    from backends import numpy_manual

    _pretend_cupy(monkeypatch, None)
    assert (
        numpy_manual.unavailable("fused", "cuda") == "cupy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"
    )
    numba_cuda = pytest.importorskip("backends.numba_cuda")
    monkeypatch.setattr(numba_cuda, "cuda", None)
    assert numba_cuda.unavailable("kernel", "cuda").startswith("numba-cuda is not installed (pip install")
    with pytest.raises(ValueError, match="numba-cuda is not installed"):
        numba_cuda.prepare("kernel", "cuda", backends.seed_problem(), backends.TrainConfig())


def test_reasons_when_a_device_cannot_compute(monkeypatch):
    """A device is there but the compilers are not: NVVM for Numba-CUDA, NVRTC for CuPy."""
    from backends import numpy_manual

    def no_nvrtc(*_):
        raise RuntimeError("nvrtc missing")

    cupy = types.ModuleType("cupy")
    cupy.__version__ = "0"
    cupy.arange = no_nvrtc
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    _pretend_cupy(monkeypatch, cupy)
    assert numpy_manual.unavailable("tutorial", "cuda").startswith("cupy cannot compute on the device, no NVRTC?")
    numba_cuda = pytest.importorskip("backends.numba_cuda")
    monkeypatch.setattr(numba_cuda, "cuda", types.SimpleNamespace(is_available=lambda: True))
    monkeypatch.setattr(numba_cuda, "_simulated", lambda: False)
    monkeypatch.setattr(numba_cuda, "_nvvm_found", lambda: False)
    assert numba_cuda.unavailable("kernel", "cuda").startswith("numba-cuda needs NVVM to compile kernels")


def test_gpu_helpers_import_no_framework():
    code = "import sys, bench.gpu; print(','.join(m for m in ('torch', 'jax', 'cupy', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_gpu_info_is_empty_without_a_gpu():
    _no_gpu()
    assert gpu.gpu_info() == {}


def test_event_timers():
    assert gpu.event_timer("") is None  # JAX has no public event API: its synchronised wall time is its GPU time
    with pytest.raises(ValueError, match="no event timer for 'tensorflow'"):
        gpu.event_timer("tensorflow")
    for runtime, package in (("torch", "torch"), ("numba", "numba_cuda"), ("cupy", "cupy")):
        if importlib.util.find_spec(package) is not None:
            assert isinstance(gpu.event_timer(runtime), gpu.DeviceTimer), runtime


def test_every_gpu_runtime_a_spec_may_name_has_its_timer():
    assert {"", *gpu._TIMERS} == set(GPU_RUNTIMES)
    assert {spec.gpu_runtime for spec in specs() if spec.device == "cpu"} == {""}


def test_precision_settings(monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    facts = gpu.precision_settings()
    assert facts["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert facts["NVIDIA_TF32_OVERRIDE"] is None  # unset, and recorded so
    assert set(gpu.PRECISION_ENV) <= set(facts)
    if importlib.util.find_spec("torch") is not None:
        assert isinstance(facts["torch_matmul_allow_tf32"], bool)
        assert isinstance(facts["torch_cudnn_allow_tf32"], bool)
        assert facts["torch_float32_matmul_precision"] in ("highest", "high", "medium")
        assert facts["torch_deterministic_algorithms"] is False  # torch's default: regbench changes none
    if importlib.util.find_spec("jax") is not None:
        assert "jax_default_matmul_precision" in facts
    json.dumps(facts)  # goes into the machine record as it is
