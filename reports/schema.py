"""What regbench accepts from outside, checked once where it comes in: saved runs and command-line numbers.

Rules: a saved run is validated whole by pydantic when it is read
(reports.load) and nowhere else; readers then trust it. Only the fields
regbench reads are declared, strictly (a string is not a number, a number not a
string); any other field passes untouched. A run holds at least one benchmark
and no two with the same identity (the one ``compare`` pairs by). A failure is
an ``InvalidRecord`` whose one-line message names the benchmark and the field.
Command-line numbers are checked by the same library (``number_option``).
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

#: What makes two benchmarks the same measurement (reports.compare pairs them by it).
IDENTITY = ["kind", "trainer", "dtype", "n", "epochs", "lr", "workers", "threads"]

Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Bytes = Annotated[int, Field(ge=0)]
Dtype = Literal["float32", "float64"]


def kind_of(name: str) -> str:
    """A benchmark's kind from its test's name: "fit" for ``test_fit[...]``."""
    return name.split("[", 1)[0].removeprefix("test_")


class _Record(BaseModel):
    # strict: "800" is not 800; extra="allow": what pytest-benchmark or a later regbench adds passes untouched.
    model_config = ConfigDict(strict=True, extra="allow")


class Stats(_Record):
    median: Seconds
    iqr: Seconds
    q1: Seconds
    q3: Seconds
    min: Seconds
    rounds: Count
    data: list[Seconds] | None = None  # every round's time; absent in files saved without it


class FitInfo(_Record):
    trainer: str
    backend: str
    device: str
    variant: str
    dtype: Dtype
    n: Count
    epochs: Count
    lr: Positive
    workers: Count = 1  # files saved before the data-parallel trainers: one process
    threads: Count | None = None
    w: float  # non-finite values are a diverged fit's, kept as they are
    b: float
    final_loss: float
    diverged: bool
    losses: list[float] = []
    first_call_s: Seconds | None = None
    prepare_s: Seconds | None = None
    result_s: Seconds | None = None
    cold_start_s: Seconds | None = None
    warm_start_s: Seconds | None = None
    fresh_fit_s: Seconds | None = None
    allreduce_s: Seconds | None = None
    peak_bytes: Bytes | None = None
    data_bytes: Count | None = None  # of x and y: never 0
    worker_peak_bytes: Bytes | None = None
    opt_distance: float | None = None
    loss_gap: float | None = None
    ref_dw: float | None = None
    ref_db: float | None = None
    ref_loss_rel: float | None = None


class FloorInfo(_Record):
    n: Count
    dtype: Dtype
    device: str = "cpu"
    floor_s: Seconds | None = None
    bandwidth_Bps: Positive
    method: str


class Benchmark(_Record):
    name: str
    group: str | None = None
    stats: Stats
    extra_info: dict[str, Any]  # FitInfo or FloorInfo, by name: checked in Run below, where the name is known

    @property
    def kind(self) -> str:
        return kind_of(self.name)

    @property
    def is_floor(self) -> bool:
        return self.kind == "floor"


class Gpu(_Record):
    name: str = "GPU"
    total_memory_bytes: Bytes | None = None
    driver_version: str | None = None
    cuda_runtime_version: str | None = None


class Environment(_Record):
    versions: dict[str, str | None] = {}
    python: str | None = None
    cpu_count: Count | None = None
    torch_threads: int | None = None
    numba_threads: int | None = None
    thread_env: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    gpu: Gpu | str | None = None  # a string in files saved before the GPU record had fields


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
    benchmarks: list[Benchmark] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_of_each(self) -> Run:
        seen: dict[tuple, str] = {}
        for index, bench in enumerate(self.benchmarks):
            model = FloorInfo if bench.is_floor else FitInfo
            info = _validated(model, bench.extra_info, ("extra_info",), repr(bench.name))
            bench.extra_info = info.model_dump()
            if bench.is_floor:
                continue
            identity = tuple(bench.kind if key == "kind" else bench.extra_info[key] for key in IDENTITY)
            if identity in seen:
                raise ValueError(f"benchmarks {seen[identity]!r} and {bench.name!r} (#{index}) measure the same thing "
                                 f"(same {', '.join(IDENTITY)})")  # fmt: skip
            seen[identity] = bench.name
        return self


class InvalidRecord(ValueError):
    """A saved run that is not a regbench record; the message is one line naming the benchmark and field."""


def _validated(model: type[BaseModel], data: Any, where: tuple, benchmark: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecord(_one_line(exc, where, benchmark)) from None


def _one_line(exc: ValidationError, where: tuple = (), benchmark: str = "", names: list | None = None) -> str:
    """The first of pydantic's errors, as "benchmark 'NAME': field a.b: what is wrong (got VALUE)"; a benchmark
    found by its place in ``benchmarks`` is named by ``names`` (its name where it has one, else '#index')."""
    error = exc.errors(include_url=False)[0]
    loc = [*where, *error["loc"]]
    if len(loc) >= 2 and loc[0] == "benchmarks" and isinstance(loc[1], int):
        name = (names or [])[loc[1]] if loc[1] < len(names or []) else None
        benchmark, loc = repr(name) if isinstance(name, str) else f"#{loc[1]}", loc[2:]
    field = f"field {'.'.join(str(part) for part in loc)}: " if loc else ""
    got = repr(error.get("input"))
    got = got if len(got) <= 40 else got[:37] + "..."
    message = error["msg"].removeprefix("Value error, ")
    shown = "" if error["type"] in ("missing", "value_error") else f" (got {got})"
    return (f"benchmark {benchmark}: " if benchmark else "") + f"{field}{message}{shown}"


def validate_run(data: Any) -> Run:
    """The saved run ``data`` (parsed JSON), validated; raises InvalidRecord."""
    try:
        return Run.model_validate(data)
    except ValidationError as exc:
        benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
        names = (
            [b.get("name") if isinstance(b, dict) else None for b in benchmarks] if isinstance(benchmarks, list) else []
        )
        raise InvalidRecord(_one_line(exc, names=names)) from None


def number_option(description: str, **constraints: Any):
    """An argparse ``type`` for a float option held to pydantic ``constraints`` (gt, lt, ...); NaN and inf refused."""
    adapter = TypeAdapter(Annotated[float, Field(allow_inf_nan=False, **constraints)])

    def parse(text: str) -> float:
        try:
            return adapter.validate_python(float(text))
        except (ValueError, ValidationError):
            raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None

    return parse


#: A run's name: it becomes part of a file name, so no path separators and no leading dot.
RunName = Annotated[str, Field(pattern=r"^[\w+-][\w.+-]*$", max_length=100)]


def name_option(text: str) -> str:
    """An argparse ``type`` for a saved run's name."""
    try:
        return TypeAdapter(RunName).validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"must be letters, digits, '.', '_', '+' or '-' (not first a '.'), "
                                         f"at most 100, got {text!r}") from None  # fmt: skip


def count_option(text: str) -> int:
    """An argparse ``type`` for a positive integer option."""
    try:
        return TypeAdapter(Count).validate_python(int(text))
    except (ValueError, ValidationError):
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
