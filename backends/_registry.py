"""Registry of every trainer regbench knows, usable here or not.

Rules: listing trainer ids imports no framework. A backend module, and with it
its framework, is imported the first time one of its trainers is probed or
used. A spec's ``backend`` is the import name of its framework. Every backend
module has the same shape: ``unavailable(variant, device) -> str`` (why it
cannot run here, "" when it can) and ``prepare(variant, device, problem,
config) -> PreparedFit``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from backends._core import Availability, FitResult, PreparedFit, Problem, TrainConfig


@dataclass(frozen=True)
class TrainerSpec:
    backend: str  # framework family: "numpy", "torch", "jax", "numba"
    method: str  # how gradients are obtained: "manual", "autograd", "grad", "native"
    variant: str  # execution style: "tutorial", "eager", "jit", "scan", ...
    device: str  # "cpu", "cuda", "gpu"
    module: str  # backend module, imported on first use

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.method}-{self.variant}-{self.device}"


_SPECS = (
    TrainerSpec("numpy", "manual", "tutorial", "cpu", "backends.numpy_manual"),
    TrainerSpec("numpy", "manual", "fused", "cpu", "backends.numpy_manual"),
    TrainerSpec("torch", "autograd", "eager", "cpu", "backends.torch_autograd"),
    TrainerSpec("torch", "autograd", "compiled", "cpu", "backends.torch_autograd"),
    TrainerSpec("torch", "autograd", "eager", "cuda", "backends.torch_autograd"),
    TrainerSpec("torch", "autograd", "compiled", "cuda", "backends.torch_autograd"),
    TrainerSpec("torch", "autograd", "cudagraph", "cuda", "backends.torch_autograd"),
    TrainerSpec("jax", "grad", "eager", "cpu", "backends.jax_grad"),
    TrainerSpec("jax", "grad", "jit", "cpu", "backends.jax_grad"),
    TrainerSpec("jax", "grad", "scan", "cpu", "backends.jax_grad"),
    TrainerSpec("jax", "grad", "eager", "gpu", "backends.jax_grad"),
    TrainerSpec("jax", "grad", "jit", "gpu", "backends.jax_grad"),
    TrainerSpec("jax", "grad", "scan", "gpu", "backends.jax_grad"),
    TrainerSpec("numba", "native", "loop", "cpu", "backends.numba_native"),
    TrainerSpec("numba", "native", "simd", "cpu", "backends.numba_native"),
)
_BY_ID = {spec.id: spec for spec in _SPECS}

#: The tutorial's NumPy loop: the reference every comparison is made against.
REFERENCE_ID = "numpy-manual-tutorial-cpu"


class TrainerUnavailable(RuntimeError):
    """A known trainer that cannot run here; ``reason`` says why."""

    def __init__(self, trainer_id: str, reason: str) -> None:
        super().__init__(f"{trainer_id} is unavailable here: {reason}")
        self.trainer_id = trainer_id
        self.reason = reason


@dataclass(frozen=True)
class RegisteredTrainer:
    """The Trainer protocol, delegating to the spec's backend module."""

    spec: TrainerSpec

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def device(self) -> str:
        return self.spec.device

    @property
    def variant(self) -> str:
        return self.spec.variant

    def prepare(self, problem: Problem, config: TrainConfig) -> PreparedFit:
        module = importlib.import_module(self.spec.module)
        return module.prepare(self.spec.variant, self.spec.device, problem, config)

    def fit(self, problem: Problem, config: TrainConfig) -> FitResult:
        prepared = self.prepare(problem, config)
        return prepared.result(prepared.run())


def trainer_ids() -> tuple[str, ...]:
    """Every trainer id regbench knows, in a stable order; imports nothing."""
    return tuple(_BY_ID)


def _load(spec: TrainerSpec) -> tuple[ModuleType | None, str]:
    framework = spec.backend
    if importlib.util.find_spec(framework) is None:
        return None, f"{framework} is not installed (pip install 'regbench[{framework}]')"  # each has its extra
    try:
        return importlib.import_module(spec.module), ""
    except Exception as exc:  # a broken install must read as a reason, not a crash
        return None, f"importing {framework} failed: {type(exc).__name__}: {exc}"


@functools.cache
def _availability(trainer_id: str) -> Availability:
    spec = _BY_ID[trainer_id]
    module, reason = _load(spec)
    if module is not None:
        try:
            reason = module.unavailable(spec.variant, spec.device)
        except Exception as exc:
            reason = f"probing {spec.backend} on {spec.device} failed: {type(exc).__name__}: {exc}"
    return Availability(ok=not reason, reason=reason)


def available() -> Mapping[str, Availability]:
    """Every known trainer id with whether it can run here, and why not."""
    return {trainer_id: _availability(trainer_id) for trainer_id in _BY_ID}


def get_trainer(trainer_id: str) -> RegisteredTrainer:
    """The trainer ``trainer_id``; raises ValueError if unknown, TrainerUnavailable if unusable here."""
    spec = _BY_ID.get(trainer_id)
    if spec is None:
        raise ValueError(f"unknown trainer {trainer_id!r}; known trainers: {', '.join(_BY_ID)}")
    availability = _availability(trainer_id)
    if not availability.ok:
        raise TrainerUnavailable(trainer_id, availability.reason)
    return RegisteredTrainer(spec)
