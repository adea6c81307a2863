"""Registry of every trainer regbench knows, usable here or not.

Rules: the trainers are regbench's own and every installed plugin's, found by
backends.discovery; listing them imports no framework. A backend module, and
with it its framework, is imported the first time one of its trainers is
probed or used. Every backend module has the same shape (``CONTRACT``):
``unavailable(variant, device) -> str`` (why it cannot run here, "" when it
can), ``prepare(variant, device, problem, config) -> PreparedFit``, and
``VARIANTS``, a mapping of each device it serves to its variants. A module
that lacks part of it, fails to import or raises while probing makes its
trainers unavailable, with the reason, never the suite. The roles a trainer
plays in comparisons are declared in its spec and nowhere else: ``bench/``
writes them into every record, and ``reports/`` reads them from there.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import problems
from backends._core import (
    Availability,
    FitResult,
    PreparedFit,
    Problem,
    TrainConfig,
    check_fit,
    make_named_problem,
)
from backends.builtin import TRAINERS as BUILTIN_SPECS
from backends.discovery import Broken, Source, catalogue
from backends.spec import TrainerSpec
from records.roles import BASELINE, REFERENCE, ROLES
from records.sources import failure, plugin_code

#: The tutorial's NumPy loop: the reference every comparison is made against (only a built-in may hold it).
(REFERENCE_ID,) = (spec.id for spec in BUILTIN_SPECS if REFERENCE in spec.roles)
#: What a backend module defines (tests/test_api.py holds the built-ins to it; a plugin's is checked on probing).
CONTRACT = ("unavailable", "prepare")


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
        if not self.spec.runs(problem.model):
            raise ValueError(f"{self.id} does not run model {problem.model!r}; it runs: "
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
    """Every trainer id regbench knows, regbench's own first, in a stable order; imports no framework."""
    return tuple(catalogue().specs)


def specs() -> tuple[TrainerSpec, ...]:
    """Every registered spec, in the order of ``trainer_ids()``; imports no framework."""
    return tuple(catalogue().specs.values())


def source_of(trainer_id: str) -> Source | None:
    """The distribution and entry point that declared a known trainer."""
    return catalogue().sources.get(trainer_id)


def broken() -> tuple[Broken, ...]:
    """Every plugin entry point or spec that was refused, with why."""
    return catalogue().broken


def runs(trainer_id: str, problem: str) -> bool:
    """Whether a known trainer runs problem ``problem``: its spec lists the problem's model family, or runs models
    written once (imports the problem's module, NumPy only)."""
    spec = spec_of(trainer_id)
    model = problems.get(problem).MODEL
    if spec is None or not spec.runs(model):
        return False
    # A trainer without autodiff runs a family it has no code of its own for by the family's hand-derived gradient.
    return model in spec.problems or spec.method != "manual" or callable(getattr(problems.get(model), "gradient", None))


def spec_of(trainer_id: str) -> TrainerSpec | None:
    """The spec of a known id, None for an id the registry does not know (an old saved run's, say)."""
    return catalogue().specs.get(trainer_id)


def roles_of(trainer_id: str) -> tuple[str, ...]:
    spec = spec_of(trainer_id)
    return spec.roles if spec else ()


def with_role(role: str, device: str | None = None) -> tuple[str, ...]:
    """Ids of the trainers playing ``role`` (on ``device``, if given)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return tuple(s.id for s in specs() if role in s.roles and device in (None, s.device))


def baseline_of(trainer_id: str) -> str | None:
    """The baseline of a trainer's backend on its device (itself, for a baseline); None where there is none."""
    spec = spec_of(trainer_id)
    if spec is None:
        return None
    found = [s.id for s in specs() if BASELINE in s.roles and (s.backend, s.device) == (spec.backend, spec.device)]
    return found[0] if found else None


def twin_of(trainer_id: str) -> str | None:
    """The single-process trainer a data-parallel one distributes (its steps, one process); None for others."""
    spec = spec_of(trainer_id)
    if spec is None or not spec.twin:
        return None
    return TrainerSpec(spec.backend, spec.method, spec.twin, spec.device, "").id


def _load(spec: TrainerSpec) -> tuple[ModuleType | None, str]:
    framework = spec.import_name
    try:
        with plugin_code():  # finding "a.b" imports a
            installed = importlib.util.find_spec(framework) is not None
    except Exception:  # "a.b" where a is missing, or fails to import: b cannot be installed
        installed = False
    if not installed:
        return None, f"{framework} is not installed ({spec.install_hint})"
    try:
        with plugin_code():
            module = importlib.import_module(spec.module)
    except Exception as exc:  # a broken install or plugin must read as a reason, not a crash
        return None, f"importing {spec.module} failed: {failure(exc)}"
    missing = [name for name in CONTRACT if not callable(getattr(module, name, None))]
    if missing:
        return None, f"{spec.module} lacks {', '.join(missing)} (a backend module defines {', '.join(CONTRACT)})"
    return module, ""


@functools.cache
def _availability(trainer_id: str) -> Availability:
    spec = spec_of(trainer_id)
    module, reason = _load(spec)
    if module is not None:
        try:
            with plugin_code():
                reason = module.unavailable(spec.variant, spec.device)
        except Exception as exc:
            reason = f"probing {spec.backend} on {spec.device} failed: {failure(exc)}"
        if not isinstance(reason, str):
            reason = f"{spec.module}.unavailable() returned {type(reason).__name__}, not a reason string"
    return Availability(ok=not reason, reason=_blamed(trainer_id, reason))


def _blamed(trainer_id: str, reason: str) -> str:
    """A plugin's trouble, naming the distribution to take it to; a built-in's as it is."""
    source = source_of(trainer_id)
    return f"{reason} [{source.release}]" if reason and not source.builtin else reason


def prepare_fails(trainer_id: str) -> str:
    """Why an available trainer's ``prepare`` fails on its first problem at n = 2 (``regbench list`` asks before a
    long run does); "" when it prepares, or cannot be asked here (unavailable, or a data-parallel group)."""
    spec = spec_of(trainer_id)
    if not _availability(trainer_id).ok or spec.distributed:
        return ""
    problem = make_named_problem(spec.problems[0], 2, seed=0)  # a family's name is its own problem's (spec.faults)
    try:
        with plugin_code():
            prepared = RegisteredTrainer(spec).prepare(problem, TrainConfig(epochs=1))
        if not isinstance(prepared, PreparedFit):
            raise TypeError(f"prepare() returned {type(prepared).__name__}, not a PreparedFit (run and result)")
    except Exception as exc:  # whatever a plugin raises (sys.exit() too) is reported, not raised
        return _blamed(trainer_id, f"prepare() failed: {failure(exc)}")
    return ""


def available() -> Mapping[str, Availability]:
    """Every known trainer id with whether it can run here, and why not."""
    return {trainer_id: _availability(trainer_id) for trainer_id in trainer_ids()}


def get_trainer(trainer_id: str) -> RegisteredTrainer:
    """The trainer ``trainer_id``; raises ValueError if unknown, TrainerUnavailable if unusable here."""
    if not isinstance(trainer_id, str):
        raise TypeError(f"trainer_id must be a string (one of backends.trainer_ids()), got {type(trainer_id).__name__}")
    spec = spec_of(trainer_id)
    if spec is None:
        raise ValueError(f"unknown trainer {trainer_id!r}; known trainers: {', '.join(trainer_ids())}")
    availability = _availability(trainer_id)
    if not availability.ok:
        raise TrainerUnavailable(trainer_id, availability.reason)
    return RegisteredTrainer(spec)
