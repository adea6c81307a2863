"""The record of a saved run, as pydantic models: what ``bench`` writes and ``reports`` reads.

Rules: one model per record. A benchmark's ``extra_info`` is a ``FitRecord``
(a trainer's benchmark) or a ``FloorRecord`` (the bandwidth floor), written by
``bench`` with one ``model_dump``; the file-level facts (the problems' data, the
outcome of every selected benchmark) are a ``RunFacts`` under the file's
``regbench`` key, stamped by pytest-benchmark's ``pytest_benchmark_update_json``
hook. A record carries everything a reader needs without importing the code
that made it: the trainer's backend, method, variant, device, roles, whether it
is data-parallel and its twin, the problem and its parameters. Fields are
strict (a string is not a number) and other fields pass untouched
(``extra="allow"``): what pytest-benchmark or a later regbench adds survives.
A saved run is validated whole, once, by ``validate_run``: files of an older
schema are upgraded first (records.upgrade), and a file of a newer schema than
this regbench knows is refused; a failure is an ``InvalidRecord`` whose
one-line message names the benchmark and the field. A fit's parameters are
kept by name (``ParamRecord``), as its problem names them: nothing here knows
a model's parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from records.schema import FLOOR, MAX_VALUES, SCHEMA_VERSION, SEED_PROBLEM
from records.upgrade import NewerSchema, upgrade

__all__ = ["FLOOR", "SCHEMA_VERSION", "SEED_PROBLEM"]  # re-exported: every reader imports them from here

#: What makes two benchmarks the same measurement (reports.compare pairs them by it; a run holds each once). The
#: size's role tells the tutorial's 100 points (the seed's default size, seed 100) from a sweep's (seed 0).
IDENTITY = ["kind", "problem", "trainer", "dtype", "n", "epochs", "lr", "workers", "threads", "size"]

Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Bytes = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Dtype = Literal["float32", "float64"]
Scalar = int | float | str | bool


class _Record(BaseModel):
    # strict: "800" is not 800; extra="allow": what pytest-benchmark or a later regbench adds passes untouched.
    model_config = ConfigDict(strict=True, extra="allow")


#: The parameters a problem's label leaves out: the size (its own column) and the recipe's seed and noise.
UNLABELLED = ("n", "seed", "noise")


class ProblemRecord(_Record):
    """What was fitted: the model's name and the parameters its data were made from (n, seed, noise, ...)."""

    name: str
    params: dict[str, Scalar] = {}

    @property
    def label(self) -> str:
        """The problem as a benchmark's identity and the reports name it: its name, and for a problem with
        parameters of its own, those too (``linear(d=16)``). The seed's problem is ``quadratic``, as ever."""
        own = [f"{key}={value}" for key, value in sorted(self.params.items()) if key not in UNLABELLED]
        return f"{self.name}({','.join(own)})" if own else self.name


def _without_unset(data: dict, keys: tuple[str, ...]) -> dict:
    """``data`` less those of ``keys`` that are None: optional fields added later are absent where unset, as in
    the files saved before there were any."""
    for key in keys:
        if data.get(key) is None:
            data.pop(key, None)
    return data


class ParamRecord(_Record):
    """One fitted parameter, as its problem names it: its shape, its size, its values where they are few, and how
    far it is from the float64 reference's and from the least-squares optimum's.

    ``norm`` is ‖p‖₂ (|p| for a scalar; non-finite for a diverged fit). ``values`` and ``optimum`` are kept
    where the parameter has at most MAX_VALUES values. ``ref_diff`` is the largest |p − p_ref| over its values,
    ``ref_rel`` ‖p − p_ref‖₂ / ‖p_ref‖₂, ``opt_rel`` ‖p − p*‖₂ / ‖p*‖₂ (None: not measured; a schema-1 file
    knew ``ref_diff`` alone, as ``ref_dw`` and ``ref_db``).
    """

    shape: list[int]
    norm: float
    values: list[float] | None = None
    optimum: list[float] | None = None
    ref_diff: float | None = None
    ref_rel: float | None = None
    opt_rel: float | None = None

    @model_serializer(mode="wrap")
    def _unset_keys_left_out(self, handler) -> dict:
        return _without_unset(handler(self), ("values", "optimum", "ref_diff", "ref_rel", "opt_rel"))

    @model_validator(mode="after")
    def _values_of_its_shape(self) -> ParamRecord:
        size = 1
        for dim in self.shape:
            size *= dim
        for name in ("values", "optimum"):
            got = getattr(self, name)
            if got is not None and len(got) != size:
                raise ValueError(f"{name} has {len(got)} values, not one per element of shape {self.shape}")
        return self

    @property
    def scalar(self) -> bool:
        return not self.shape

    @classmethod
    def of(cls, value: Any, optimum: Any = None, **agreement: float | None) -> ParamRecord:
        """The record of a fitted parameter ``value`` (a float or an array-like), with the optimum's value."""
        flat = [float(v) for v in _flat(value)]
        shape = [int(d) for d in getattr(value, "shape", ())]
        kept = len(flat) <= MAX_VALUES
        opt = None if optimum is None or not kept else [float(v) for v in _flat(optimum)]
        norm = sum(v * v for v in flat) ** 0.5 if shape else abs(flat[0])
        return cls(shape=shape, norm=norm, values=flat if kept else None, optimum=opt, **agreement)


def _flat(value: Any) -> list:
    """Every element of a float, a nested list or an array-like (``tolist``), in C order."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if not isinstance(value, list):
        return [value]
    return [v for item in value for v in _flat(item)]


class FitRecord(_Record):
    """One trainer's benchmark: who ran, on what, what it computed, what it cost."""

    schema_version: Literal[4] = SCHEMA_VERSION
    # The study: "fit" (every problem at each of its sizes), "marginal", "scaling", ... (bench/test_KIND.py); the
    # problem is its own field.
    kind: str
    problem: ProblemRecord
    # The trainer, as its spec said when it ran.
    trainer: str
    backend: str
    method: str
    variant: str
    device: str
    roles: list[str] = []  # records.roles
    distributed: bool = False  # a data-parallel trainer: a group of ``workers`` processes
    twin: str | None = None  # data-parallel: the trainer that runs the same steps in one process
    compiles: bool = False  # its first call compiles: first_call_s and the cold start say what that costs
    source: str | None = None  # the distribution that declared it ("regbench-autograd 0.1.0"); None: older runs
    color: str | None = None  # its backend's colour in the charts, as its spec hints (None: picked from the name)
    workers: Count = 1  # every node's, in all
    nodes: Count = 1  # the machines a data-parallel group spanned (regbench run --nnodes)
    threads: Count | None = None  # None: the framework's own choice
    # The configuration.
    dtype: Dtype
    n: Count
    # What the size is to the runs: one of the problem's default sizes, what --full adds, or another (the sweep's, a
    # study's); None: saved before records said it.
    size: Literal["default", "full", "sweep"] | None = None
    epochs: Count
    lr: Positive
    # What it computed: every parameter by its problem's name, in the model's order (non-finite values are a
    # diverged fit's, kept as they are).
    params: dict[str, ParamRecord] = Field(min_length=1)
    final_loss: float
    diverged: bool
    losses: list[float] = []  # the loss of every epoch, where the benchmark kept it
    # What it cost, beside the rounds' times in ``stats``.
    first_call_s: Seconds | None = None
    prepare_s: Seconds | None = None
    result_s: Seconds | None = None
    gpu_time_s: Seconds | None = None
    cold_start_s: Seconds | None = None
    warm_start_s: Seconds | None = None
    fresh_fit_s: Seconds | None = None
    fresh_run_s: Seconds | None = None  # the bare run() beside those fit() calls, in the same fresh process
    allreduce_s: Seconds | None = None
    peak_bytes: Bytes | None = None
    memory_method: str | None = None
    data_bytes: Count | None = None  # of the data read every epoch: never 0
    flops: Count | None = None  # of one epoch, forward and backward (its model's ``flops``); None: older runs
    # The fitted curve a report draws over the problem's data (RunFacts.problems: x and y): the fitted model's
    # prediction at each x, in float64 (its problem module's ``curve``); None where its problem draws none.
    curve: list[float] | None = None
    # The dtype the problem's data were made in, where not float64 (then a fit of that dtype converted nothing).
    data_dtype: Dtype | None = None
    worker_peak_bytes: Bytes | None = None
    # The share of the machine's CPU time (every CPU's) that other processes took while the timed rounds ran
    # (bench.contention: /proc/stat less the benchmark's own processes); None: not measured (saved before, not Linux).
    others_cpu: Fraction | None = None
    # How accurate it was, beside each parameter's own: against the closed-form optimum (the distance of every
    # parameter at once, and the loss) and the float64 reference (the loss history's largest relative difference).
    loss_opt: float | None = None
    opt_distance: float | None = None
    loss_gap: float | None = None
    ref_loss_rel: float | None = None
    # The frameworks its process had imported when it was measured (bench.isolation); None: not recorded.
    loaded_frameworks: list[str] | None = None

    @model_serializer(mode="wrap")
    def _unset_keys_left_out(self, handler) -> dict:
        """A record of float64 data, without a fresh process's bare loop, without FLOPs (saved before records
        counted them) or without a fitted curve is saved without the key."""
        return _without_unset(handler(self), ("data_dtype", "fresh_run_s", "flops", "size", "curve", "others_cpu"))

    @model_validator(mode="after")
    def _history_of_every_epoch(self) -> FitRecord:
        if self.losses and len(self.losses) != self.epochs:
            raise ValueError(f"losses has {len(self.losses)} values, not one per epoch ({self.epochs})")
        return self


class FloorRecord(_Record):
    """The bandwidth floor: one streaming read of the data on a device, the least time any epoch can take.

    ``problem``: the problem whose data (its ``floor_bytes`` at size ``n``) the read stands for; None, and no
    key in the file, for the seed's x and y of n points (every run written before floors named a problem).
    """

    schema_version: Literal[4] = SCHEMA_VERSION
    kind: Literal["floor"] = FLOOR
    n: Count
    dtype: Dtype
    device: str = "cpu"
    data_bytes: Count | None = None
    method: str
    first_call_s: Seconds | None = None
    floor_s: Seconds | None = None
    bandwidth_Bps: Positive
    loaded_frameworks: list[str] | None = None  # as FitRecord's
    problem: ProblemRecord | None = None

    @property
    def problem_label(self) -> str:
        """The label of the problem the floor stands for (ProblemRecord.label; the seed's: SEED_PROBLEM)."""
        return SEED_PROBLEM if self.problem is None else self.problem.label

    @model_serializer(mode="wrap")
    def _problem_where_there_is_one(self, handler) -> dict:
        """The seed's floor is saved without the key, as before floors named a problem."""
        return _without_unset(handler(self), ("problem",))


class Outcome(_Record):
    """How one selected benchmark ended, as pytest reported it while the run happened."""

    test: str  # the test's name, e.g. "test_fit[quadratic-n100,seed100-jax-grad-jit-gpu-float32]"
    outcome: Literal["passed", "failed", "skipped"]
    trainer: str | None = None
    dtype: str | None = None
    reason: str = ""  # a skip's or failure's one line
    # Seconds from the benchmark's setup to its teardown (first call, rounds, cold start: all it cost the run); the
    # next run's progress estimates from it (regbench.estimates). Absent in files saved before it was kept.
    wall_s: float | None = None

    @model_serializer(mode="wrap")
    def _unset_keys_left_out(self, handler) -> dict:
        return _without_unset(handler(self), ("wall_s",))


class ProblemData(_Record):
    """A small problem's data, kept so that a report can draw the fitted curves without remaking them."""

    problem: ProblemRecord
    x: list[float]
    y: list[float]


class RunFacts(_Record):
    """The file-level facts of a run (the file's ``regbench`` key)."""

    schema_version: Literal[4] = SCHEMA_VERSION
    outcomes: list[Outcome] = []
    problems: list[ProblemData] = []
    # A quick run (``regbench run --quick``): fewer rounds, no cold starts; its times are never compared with a
    # full run's (reports.compare.quick_mismatch).
    quick: bool = False
    # The run's depth: "quick", "default" (every problem at its default sizes) or "full" (every study too);
    # None in files saved before depths (their non-quick runs had the studies: cold starts, large sizes, marginal).
    depth: Literal["quick", "default", "full"] | None = None

    @model_serializer(mode="wrap")
    def _unset_keys_left_out(self, handler) -> dict:
        return _without_unset(handler(self), ("depth",))

    @model_validator(mode="after")
    def _one_depth(self) -> RunFacts:
        if self.depth is not None and self.quick != (self.depth == "quick"):
            raise ValueError(f"quick is {self.quick} but depth is {self.depth!r}")
        return self

    # The frameworks whose benchmarks ran each in a pytest process of their own, in that order (``regbench run``,
    # bench.isolation); empty: every benchmark ran in one process (``pytest bench``).
    processes: list[str] = []


class Stats(_Record):
    median: Seconds
    iqr: Seconds
    q1: Seconds
    q3: Seconds
    min: Seconds
    rounds: Count
    data: list[Seconds] | None = None  # every round's time; absent in files saved without it


class Benchmark(_Record):
    name: str
    group: str | None = None
    stats: Stats
    extra_info: FloorRecord | FitRecord  # told apart by ``kind`` (_by_kind), so that errors name the right model

    @model_validator(mode="before")
    @classmethod
    def _by_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("extra_info"), dict):
            info = data["extra_info"]
            model = FloorRecord if info.get("kind") == FLOOR else FitRecord
            data = {**data, "extra_info": _validated(model, info, ("extra_info",))}
        return data

    @property
    def kind(self) -> str:
        return self.extra_info.kind

    @property
    def is_floor(self) -> bool:
        return self.kind == FLOOR

    def identity(self) -> tuple:
        """What ``compare`` pairs by (IDENTITY); a trainer's benchmarks only."""
        info = self.extra_info
        return tuple(info.problem.label if key == "problem" else getattr(info, key) for key in IDENTITY)


class Gpu(_Record):
    name: str = "GPU"
    total_memory_bytes: Bytes | None = None
    driver_version: str | None = None
    cuda_runtime_version: str | None = None


class CpuFacts(_Record):
    """The CPU as Linux names it, and the vector extensions a compiled loop can use (bench.environment)."""

    model: str | None = None
    family: str | None = None
    model_number: str | None = None
    vector_extensions: list[str] = []
    cache_bytes: Bytes | None = None  # the last-level cache's size


class Matmul(_Record):
    """The machine's matrix-product rate (bench.compute): NumPy's BLAS at ``shape`` (n, d, h: an epoch's two
    products of mlp's first default size), FLOP/s per dtype."""

    shape: list[int]
    float32: Positive
    float64: Positive


class Environment(_Record):
    versions: dict[str, str | None] = {}
    python: str | None = None
    cpu_count: Count | None = None
    cpu: CpuFacts | None = None  # None in runs saved before it was recorded
    torch_threads: int | None = None
    numba_threads: int | None = None
    thread_env: dict[str, str] = {}
    gpu: Gpu | str | None = None  # a string in files saved before the GPU record had fields
    precision: dict[str, Scalar | None] = {}  # a GPU run's precision policy (bench.gpu.precision_settings); {}: none
    unavailable: dict[str, str] = {}  # schema 0's skipped trainers (records.upgrade makes them outcomes)
    matmul: Matmul | None = None  # None in runs saved before it was recorded


class Cpu(_Record):
    brand_raw: str | None = None


class MachineInfo(_Record):
    node: str = ""
    python_version: str | None = None
    processor: str | None = None
    cpu: Cpu = Cpu()
    regbench: Environment = Environment()


class Run(_Record):
    version: str = "0"
    datetime: str | None = None
    machine_info: MachineInfo
    regbench: RunFacts = RunFacts()
    benchmarks: list[Benchmark] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_of_each(self) -> Run:
        seen: dict[tuple, str] = {}
        for index, bench in enumerate(self.benchmarks):
            if bench.is_floor:
                continue
            identity = bench.identity()
            if identity in seen:
                raise ValueError(f"benchmarks {seen[identity]!r} and {bench.name!r} (#{index}) measure the same thing "
                                 f"(same {', '.join(IDENTITY)})")  # fmt: skip
            seen[identity] = bench.name
        return self

    @property
    def fits(self) -> list[Benchmark]:
        return [b for b in self.benchmarks if not b.is_floor]

    @property
    def floors(self) -> list[Benchmark]:
        return [b for b in self.benchmarks if b.is_floor]


class InvalidRecord(ValueError):
    """A saved run that is not a regbench record; the message is one line naming the benchmark and field."""


def _validated(model: type[BaseModel], data: Any, where: tuple) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecord(_one_line(exc, where)) from None


def _one_line(exc: ValidationError, where: tuple = (), names: list | None = None) -> str:
    """The first of pydantic's errors, as "benchmark 'NAME': field a.b: what is wrong (got VALUE)"; a benchmark
    found by its place in ``benchmarks`` is named by ``names`` (its name where it has one, else '#index')."""
    error = exc.errors(include_url=False)[0]
    loc, benchmark = [*where, *error["loc"]], ""
    if len(loc) >= 2 and loc[0] == "benchmarks" and isinstance(loc[1], int):
        name = (names or [])[loc[1]] if loc[1] < len(names or []) else None
        benchmark, loc = repr(name) if isinstance(name, str) else f"#{loc[1]}", loc[2:]
    # A record nested in a benchmark: the model's own name in pydantic's path says nothing to a reader.
    loc = [part for part in loc if part not in ("FloorRecord", "FitRecord")]
    field = f"field {'.'.join(str(part) for part in loc)}: " if loc else ""
    got = repr(error.get("input"))
    got = got if len(got) <= 40 else got[:37] + "..."
    message = error["msg"].removeprefix("Value error, ")
    shown = "" if error["type"] in ("missing", "value_error") else f" (got {got})"
    return (f"benchmark {benchmark}: " if benchmark else "") + f"{field}{message}{shown}"


def validate_run(data: Any) -> Run:
    """The saved run ``data`` (parsed JSON), upgraded to the current schema and validated; raises InvalidRecord,
    also for a file of a newer schema than this regbench reads."""
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    names = [b.get("name") if isinstance(b, dict) else None for b in benchmarks] if isinstance(benchmarks, list) else []
    try:
        return Run.model_validate(upgrade(data))
    except NewerSchema as exc:
        raise InvalidRecord(str(exc)) from None
    except ValidationError as exc:
        raise InvalidRecord(_one_line(exc, names=names)) from None
