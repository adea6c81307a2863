"""The problems the benchmarks time, each with the record that names it in a saved run.

Rules: a benchmark gets a ``Workload``: the problem's data and what the record
says it is (model and parameters), made in one place, so the two cannot
disagree. Every workload used in a session is remembered: the run's file keeps
the data of the small ones (``SMALL_DATA_N``), so a report draws their fitted
curves without remaking them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

import backends
import problems
from backends import specs, total_memory
from records.model import SEED_PROBLEM, ProblemData, ProblemRecord
from records.roles import BASELINE

#: The model every trainer fits: ``y = w·x² + b`` by ``0.5·Σ(w·x²+b−y)²``.
MODEL = SEED_PROBLEM
NOISE = 0.2
#: The large problem of every run, and the sizes from which fits run LARGE_EPOCHS instead of 800.
LARGE_N, LARGE_EPOCHS = 10**6, 20
#: lr = 0.1/n, the tutorial's lr·n, keeps lr·λmax(Hessian) ≈ 0.11 at every size: every size converges alike.
LR_TIMES_N = 0.1
#: The size and the two epoch counts of the marginal-cost study (bench/test_marginal.py).
MARGINAL_N, MARGINAL_EPOCHS = 10**7, (5, 25)
#: Problems up to this size keep their data in the saved run.
SMALL_DATA_N = 1000


@dataclass(frozen=True, eq=False)
class Workload:
    problem: backends.Problem
    record: ProblemRecord

    @property
    def size(self) -> str:
        """What its size is to the runs (problems.SIZE_ROLES): the record's ``size``, which targets select by."""
        return size_role(self.record.name, {key: value for key, value in self.record.params.items() if key != "noise"})


_used: dict[tuple, Workload] = {}


def _workload(problem: backends.Problem, seed: int) -> Workload:
    record = ProblemRecord(name=MODEL, params={"n": problem.n, "seed": seed, "noise": NOISE})
    workload = Workload(problem, record)
    if problem.dtype == "float64":  # the data a report draws: the draws as they are
        _used[(record.name, *record.params.values())] = workload
    return workload


@functools.cache
def tutorial() -> Workload:
    """The tutorial's 100 points and initial ``w, b``: the seed's problem at its default size."""
    return named(MODEL, **problems.get(MODEL).DEFAULT_SIZES[0])


@functools.cache
def sized(n: int, dtype: str = "float64") -> Workload:
    """The tutorial's recipe at size ``n`` (seed 0): the large problem's and the marginal study's; in ``dtype`` for
    whole ``fit()`` calls of that dtype, as a user who makes the data in the working dtype has it."""
    return _workload(backends.make_problem(n, seed=0, dtype=dtype), 0)


@functools.cache
def named(name: str, n: int, seed: int = 0, **params) -> Workload:
    """Problem ``name`` (problems.names()) at size ``n`` with ``params`` (its defaults else) and ``seed``."""
    params = {**problems.get(name).PARAMS, **params}
    workload = Workload(backends.make_named_problem(name, n, seed, **params), problem_record(name, n, seed, **params))
    _used[(name, *workload.record.params.values())] = workload
    return workload


def problem_config(workload: Workload, dtype: str) -> backends.TrainConfig:
    """The problem's learning rate at its size; LARGE_EPOCHS from LARGE_N values of data on (800 epochs below)."""
    problem = workload.problem
    lr = problems.get(workload.record.name).lr(
        problem.n, **{k: v for k, v in workload.record.params.items() if k != "n"}
    )
    return backends.TrainConfig(epochs=LARGE_EPOCHS if problem.n * problem.d >= LARGE_N else 800, lr=lr, dtype=dtype)


#: The dtypes the runs time every problem in: both.
PROBLEM_DTYPES = backends.DTYPES
#: Seconds of timed rounds per benchmark of the other problems at most (the rounds are never fewer than
#: bench.rounds.MIN_ROUNDS), so that the default run stays within its few minutes on 2 cores.
PROBLEM_BUDGET_S = 0.5


@dataclass(frozen=True)
class Timing:
    """How a run times one problem's fits (bench/test_fit.py, bench.priors): the only place they differ.

    ``baselines``: its eager baselines are timed too (else the reference alone of them); ``budget_s``: the most
    seconds of timed rounds per benchmark (None: the run's, bench.rounds); ``workers_option``: its data-parallel
    fits run ``--workers`` processes in every run (else one a node, in the full run alone: on one machine they
    time the harness's own cost, not a scaling)."""

    baselines: bool
    budget_s: float | None
    workers_option: bool

    def rounds_s(self, run_s: float) -> float:
        """Its seconds of timed rounds per benchmark in a run that gives each ``run_s``."""
        return run_s if self.budget_s is None else min(run_s, self.budget_s)


#: The seed's problem is the suite's question: every trainer, the run's budget, the data-parallel groups at
#: ``--workers``. The others: the compiled trainers and the reference (JAX's eager loop took 8 s a fit at n = 1000,
#: d = 16), PROBLEM_BUDGET_S, for the run's time.
SEED_TIMING = Timing(baselines=True, budget_s=None, workers_option=True)
OTHER_TIMING = Timing(baselines=False, budget_s=PROBLEM_BUDGET_S, workers_option=False)


def timing(name: str) -> Timing:
    """How the runs time problem ``name``: SEED_TIMING for the seed's, OTHER_TIMING for every other."""
    return SEED_TIMING if name == MODEL else OTHER_TIMING


def size_role(name: str, sizes: dict) -> str:
    """What problem ``name`` at ``sizes`` (n, its seed and its own parameters) is to the runs: problems.SIZE_ROLES."""
    return problems.size_role(problems.get(name), **sizes)


def is_tutorial(name: str, sizes: dict) -> bool:
    """Whether problem ``name`` at ``sizes`` is the tutorial's: the seed's problem at its default size (the quick
    run's one problem, and the one whose compiled trainers' cold start the full run measures)."""
    return name == MODEL and size_role(name, sizes) == "default"


def _swept(module, sweep_n: list[int] | None) -> list[dict]:
    """The sizes ``--sweep`` times of a problem: its SWEEP_SIZES, those of the n in ``sweep_n`` where given; a
    problem whose sweep varies n alone (the seed's) is swept at every n given."""
    if sweep_n is None:
        return list(module.SWEEP_SIZES)
    if all(set(size) == {"n"} for size in module.SWEEP_SIZES):
        return [{"n": n} for n in sweep_n]
    return [size for size in module.SWEEP_SIZES if size["n"] in sweep_n]


def default_problems(sweep: bool = False, sweep_n: list[int] | None = None, full: bool = False
                     ) -> list[tuple[str, dict]]:  # fmt: skip
    """The run's problems, the seed's first (bench/test_fit.py): each problem at each of its DEFAULT_SIZES, with
    ``full`` (``--full``) at its FULL_SIZES too, and with ``sweep`` (``--sweep``) at the sizes of its sweep
    (``_swept``: ``--sweep-sizes`` as ``sweep_n``), each size once, in that order, as (name, parameters with n)."""
    out: list[tuple[str, dict]] = []
    for name in problems.usable():
        module = problems.get(name)
        swept = _swept(module, sweep_n) if sweep else []
        for sizes in (*module.DEFAULT_SIZES, *(problems.full_sizes(module) if full else ()), *swept):
            if (name, sizes) not in out:
                out.append((name, dict(sizes)))
    return out


def problem_record(name: str, n: int, seed: int = 0, **params) -> ProblemRecord:
    """The record of problem ``name`` at size ``n`` with ``params`` (its defaults else) and ``seed``, as ``named``
    makes it, without making its data."""
    return ProblemRecord(name=name, params={"n": n, "seed": seed, **{**problems.get(name).PARAMS, **params}})


def data_bytes(name: str, n: int, dtype: str, seed: int = 0, **params) -> int:
    """What an epoch of problem ``name`` at size ``n`` must read in ``dtype``: its ``floor_bytes`` (whatever the
    seed)."""
    module = problems.get(name)
    return module.floor_bytes(n, np.dtype(dtype).itemsize, **{**module.PARAMS, **params})


def epoch_flops(name: str, n: int, seed: int = 0, **params) -> int:
    """The FLOPs of one epoch of problem ``name`` at size ``n``, forward and backward: its model's ``flops``."""
    module = problems.get(name)
    return module.flops(n, **{**module.PARAMS, **params})


#: A problem whose data in the working dtype exceed this share of the machine's RAM is skipped: a sanity cap, the
#: data being made in float64 on the host (twice as large again) whatever the trainer's device.
RAM_SHARE = 0.25


def too_large(name: str, n: int, dtype: str, seed: int = 0, **params) -> str:
    """Why problem ``name`` at this size is not run on this machine ("" when it is): its data over RAM_SHARE of the
    RAM (backends.total_memory; unknown: run)."""
    need, total = data_bytes(name, n, dtype, **params), total_memory()
    if total is None or need <= RAM_SHARE * total:
        return ""
    label = problem_record(name, n, seed, **params).label
    return (f"{label} at n={n}: its data take {need / 2**30:.3g} GiB in {dtype}, over {RAM_SHARE:.0%} of this "
            f"machine's {total / 2**30:.3g} GiB of RAM")  # fmt: skip


def sweep_config(n: int, dtype: str) -> backends.TrainConfig:
    return backends.TrainConfig(epochs=LARGE_EPOCHS if n >= LARGE_N else 800, lr=LR_TIMES_N / n, dtype=dtype)


def marginal_trainers() -> tuple[str, ...]:
    """The marginal study's trainers: every one-process CPU trainer that can be its framework's fastest, and the
    native loops they are held against; not the baselines, whose epochs at this size take seconds."""
    return tuple(
        s.id
        for s in specs()
        if s.device == "cpu" and not s.distributed and BASELINE not in s.roles and MODEL in s.problems
    )


def _draws(workload: Workload) -> bool:
    """Whether a report draws the fitted curve over ``workload``'s data: small, of a model with a ``curve``."""
    return workload.problem.n <= SMALL_DATA_N and hasattr(problems.get(workload.record.name), "curve")


def fitted_curve(workload: Workload, params: dict) -> list[float] | None:
    """The fitted model's prediction at the problem's data (its module's ``curve``, in float64), where a report
    draws it (``small_data`` keeps those data); None elsewhere."""
    if not _draws(workload):
        return None
    x = np.asarray(workload.problem.x, dtype=np.float64)
    at = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    return np.asarray(problems.get(workload.record.name).curve(np, at, x), dtype=np.float64).ravel().tolist()


def small_data() -> list[ProblemData]:
    """The data of every small problem used in this process whose report draws its fitted curve, for the run's
    file."""
    drawn = [w for w in _used.values() if _draws(w)]
    return [ProblemData(problem=w.record, x=w.problem.x[:, 0].tolist(), y=w.problem.y[:, 0].tolist())
            for w in drawn]  # fmt: skip
