"""Registry of every trainer regbench knows, usable here or not.

Rules: listing trainer ids imports no framework. A backend module, and with it
its framework, is imported the first time one of its trainers is probed or
used. A spec's ``backend`` is the import name of its framework. Every backend
module has the same shape: ``unavailable(variant, device) -> str`` (why it
cannot run here, "" when it can) and ``prepare(variant, device, problem,
config) -> PreparedFit``, and ``VARIANTS``, a mapping of each device it serves
to its variants, which a test holds against the specs here. The roles a trainer
plays in comparisons (the reference, each backend's baseline, the limits) are
declared here and nowhere else: ``bench/`` writes them into every record, and
``reports/`` reads them from there (records.roles names them).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from backends._core import Availability, FitResult, PreparedFit, Problem, TrainConfig, check_fit

# The roles' names live with the saved record, which carries each trainer's roles to the reports.
from records.roles import BASELINE, CPU_LIMIT, GPU_LIMIT, NATIVE_LOOP, REFERENCE, ROLES


@dataclass(frozen=True)
class TrainerSpec:
    backend: str  # framework family: "numpy", "torch", "jax", "numba"
    method: str  # how gradients are obtained: "manual", "autograd", "grad", "native"
    variant: str  # execution style: "tutorial", "eager", "jit", "scan", ...
    device: str  # "cpu", "cuda", "gpu"
    module: str  # backend module, imported on first use
    roles: tuple[str, ...] = ()  # from ROLES
    compiles: bool = False  # its first call compiles (or captures) code: it has a cold start worth measuring
    distributed: bool = False  # runs on a group of TrainConfig.workers processes (data-parallel); others take 1
    twin: str = ""  # data-parallel: the variant (same backend, device) that runs the same steps in one process
    problems: tuple[str, ...] = ("quadratic",)  # the problems (problems.MODULES) it runs; others it refuses

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.method}-{self.variant}-{self.device}"


_NUMPY, _TORCH, _JAX, _NUMBA, _NUMBA_CUDA = (
    f"backends.{m}" for m in ("numpy_manual", "torch_autograd", "jax_grad", "numba_native", "numba_cuda")
)
_TORCH_DP, _JAX_DP = "backends.torch_dp", "backends.jax_dp"
#: The seed's problem and the second workload (problems.linear). The GPU trainers run linear with the CPU ones'
#: code (the CuPy path is tested on a NumPy stand-in, tests/test_linear.py); their agreement tests run where a
#: GPU is lent. Every trainer runs both.
_BOTH = ("quadratic", "linear")
_SPECS = (
    TrainerSpec("numpy", "manual", "tutorial", "cpu", _NUMPY, (REFERENCE, BASELINE), problems=_BOTH),
    TrainerSpec("numpy", "manual", "fused", "cpu", _NUMPY, problems=_BOTH),
    TrainerSpec("numpy", "manual", "tutorial", "cuda", _NUMPY, (BASELINE,), problems=_BOTH),  # on CuPy arrays
    TrainerSpec("numpy", "manual", "fused", "cuda", _NUMPY, problems=_BOTH),
    TrainerSpec("torch", "autograd", "eager", "cpu", _TORCH, (BASELINE,), problems=_BOTH),
    TrainerSpec("torch", "autograd", "compiled", "cpu", _TORCH, compiles=True, problems=_BOTH),
    TrainerSpec("torch", "autograd", "eager", "cuda", _TORCH, (BASELINE,), problems=_BOTH),
    TrainerSpec("torch", "autograd", "compiled", "cuda", _TORCH, compiles=True, problems=_BOTH),
    TrainerSpec("torch", "autograd", "cudagraph", "cuda", _TORCH, compiles=True, problems=_BOTH),
    TrainerSpec("jax", "grad", "eager", "cpu", _JAX, (BASELINE,), problems=_BOTH),
    TrainerSpec("jax", "grad", "jit", "cpu", _JAX, compiles=True, problems=_BOTH),
    TrainerSpec("jax", "grad", "scan", "cpu", _JAX, compiles=True, problems=_BOTH),
    TrainerSpec("jax", "grad", "eager", "gpu", _JAX, (BASELINE,), problems=_BOTH),
    TrainerSpec("jax", "grad", "jit", "gpu", _JAX, compiles=True, problems=_BOTH),
    TrainerSpec("jax", "grad", "scan", "gpu", _JAX, compiles=True, problems=_BOTH),
    TrainerSpec("numba", "native", "loop", "cpu", _NUMBA, (NATIVE_LOOP,), compiles=True, problems=_BOTH),
    TrainerSpec("numba", "native", "simd", "cpu", _NUMBA, (CPU_LIMIT,), compiles=True, problems=_BOTH),
    TrainerSpec("numba", "native", "kernel", "cuda", _NUMBA_CUDA, (GPU_LIMIT,), compiles=True, problems=_BOTH),
    # Data-parallel: one process per shard, gradients summed by the framework's all-reduce (backends._data_parallel).
    TrainerSpec("torch", "autograd", "dp", "cpu", _TORCH_DP, distributed=True, twin="eager", problems=_BOTH),
    TrainerSpec("torch", "autograd", "dp", "cuda", _TORCH_DP, distributed=True, twin="eager", problems=_BOTH),
    TrainerSpec("jax", "grad", "dp", "cpu", _JAX_DP, compiles=True, distributed=True, twin="scan", problems=_BOTH),
    TrainerSpec("jax", "grad", "dp", "gpu", _JAX_DP, compiles=True, distributed=True, twin="scan", problems=_BOTH),
)
_BY_ID = {spec.id: spec for spec in _SPECS}

#: The tutorial's NumPy loop: the reference every comparison is made against.
(REFERENCE_ID,) = (spec.id for spec in _SPECS if REFERENCE in spec.roles)


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
        check_fit(problem, config)
        if problem.model not in self.spec.problems:
            raise ValueError(f"{self.id} does not run problem {problem.model!r}; it runs: "
                             f"{', '.join(self.spec.problems)}")  # fmt: skip
        if config.workers != 1 and not self.spec.distributed:
            raise ValueError(f"{self.id} runs in one process: workers must be 1, got {config.workers} "
                             "(the data-parallel trainers, variant 'dp', take more)")  # fmt: skip
        return self._module.prepare(self.spec.variant, self.spec.device, problem, config)

    @functools.cached_property
    def _module(self) -> ModuleType:
        return importlib.import_module(self.spec.module)

    def fit(self, problem: Problem, config: TrainConfig) -> FitResult:
        prepared = self.prepare(problem, config)
        close = getattr(prepared, "close", None)  # a data-parallel fit holds worker processes
        if close is None:
            return prepared.result(prepared.run())
        try:
            return prepared.result(prepared.run())
        finally:
            close()


def trainer_ids() -> tuple[str, ...]:
    """Every trainer id regbench knows, in a stable order; imports nothing."""
    return tuple(_BY_ID)


def specs() -> tuple[TrainerSpec, ...]:
    """Every registered spec, in the order of ``trainer_ids()``; imports nothing."""
    return _SPECS


def runs(trainer_id: str, problem: str) -> bool:
    """Whether a known trainer runs problem ``problem`` (its spec declares it); imports nothing."""
    spec = _BY_ID.get(trainer_id)
    return spec is not None and problem in spec.problems


def spec_of(trainer_id: str) -> TrainerSpec | None:
    """The spec of a known id, None for an id the registry does not know (an old saved run's, say)."""
    return _BY_ID.get(trainer_id)


def roles_of(trainer_id: str) -> tuple[str, ...]:
    spec = _BY_ID.get(trainer_id)
    return spec.roles if spec else ()


def with_role(role: str, device: str | None = None) -> tuple[str, ...]:
    """Ids of the trainers playing ``role`` (on ``device``, if given)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return tuple(s.id for s in _SPECS if role in s.roles and device in (None, s.device))


def baseline_of(trainer_id: str) -> str | None:
    """The baseline of a trainer's backend on its device (itself, for a baseline); None where there is none."""
    spec = _BY_ID.get(trainer_id)
    if spec is None:
        return None
    found = [s.id for s in _SPECS if BASELINE in s.roles and (s.backend, s.device) == (spec.backend, spec.device)]
    return found[0] if found else None


def twin_of(trainer_id: str) -> str | None:
    """The single-process trainer a data-parallel one distributes (its steps, one process); None for others."""
    spec = _BY_ID.get(trainer_id)
    if spec is None or not spec.twin:
        return None
    return TrainerSpec(spec.backend, spec.method, spec.twin, spec.device, "").id


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
    if not isinstance(trainer_id, str):
        raise TypeError(f"trainer_id must be a string (one of backends.trainer_ids()), got {type(trainer_id).__name__}")
    spec = _BY_ID.get(trainer_id)
    if spec is None:
        raise ValueError(f"unknown trainer {trainer_id!r}; known trainers: {', '.join(_BY_ID)}")
    availability = _availability(trainer_id)
    if not availability.ok:
        raise TrainerUnavailable(trainer_id, availability.reason)
    return RegisteredTrainer(spec)
