"""Loading saved ``pytest bench`` runs into one tidy pandas table: the reports read records, nothing else.

Rules: storage is read, never written. A path is a storage folder (machine
folders below it, as pytest-benchmark lays them out), one machine's folder, or
a saved JSON file; only ``NNNN_*.json`` files are runs, so other files at a
storage's top level change nothing, and a machine folder that cannot be listed
is named and passed over; names are shown with bytes that are not UTF-8
escaped (``shown``); a file reached twice (named twice, or through a link) is read
once, and every file is read and validated once per command (``read``): the
report and its history share what was read. Each row carries what its record
says of the trainer (backend, method, roles, twin), never what today's registry
says. A file that cannot be read (not JSON, truncated, empty, not
pytest-benchmark's or regbench's, or a major format version newer than the
installed pytest-benchmark's) becomes a ``LoadError``: one line naming it and
why, the benchmark and the field; the good files are still loaded. From a
folder, each machine's latest readable run is taken unless ``latest=False``. A
run's machine is the name of its folder, with the record's node, CPU or GPU
added where runs of different machines share that name; two files of one
machine, run name and save time are one run. (Over 300 lines: the one reader
of storage, from path to tidy table, with every way a file can fail.)
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import stat as stat_kinds
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from records.model import Benchmark, FitRecord, InvalidRecord, ParamRecord, Run, validate_run
from records.roles import NATIVE_ROLES, REFERENCE

#: The record's fields that are no column as they are: nested (the problem: its label is; the parameters: see
#: ``param_columns``), per-epoch arrays (IN_MEMORY), or the same in every row.
_NOT_COLUMNS = {"schema_version", "problem", "params", "losses", "loaded_frameworks"}
#: Columns of the tidy table, in order (``IN_MEMORY``'s arrays follow them, and are not written to CSV): who and
#: where, every scalar field of the record (records.model.FitRecord) in its order, then what is computed from the
#: record and its run. The parameters' columns, named by the records' own parameter names, come after these.
COLUMNS = [
    "machine", "run", "problem", "group",
    *(name for name in FitRecord.model_fields if name not in _NOT_COLUMNS),
    "native", "reference", "median_s", "iqr_s", "q1_s", "q3_s", "min_s", "rounds", "per_epoch_s", "memory_ratio",
    "floor_s", "floor_fraction", "compute_s", "roofline_s", "file",
]  # fmt: skip


def param_column_names(name: str) -> list[str]:
    """The tidy table's columns of parameter ``name`` (``param_columns``' keys)."""
    return [name, f"{name}_opt", f"ref_d{name}", f"ref_rel_{name}", f"opt_rel_{name}"]


def param_columns(name: str, param: ParamRecord) -> dict[str, float | None]:
    """A fitted parameter's columns in the tidy table: its value (a scalar's; a vector's norm ‖p‖₂), the
    optimum's value (a scalar's), its largest difference from the reference's (``ref_dNAME``), and the relative
    norms of its differences from the reference's and the optimum's."""
    value = param.values[0] if param.scalar and param.values else param.norm
    opt = param.optimum[0] if param.scalar and param.optimum else None
    values = (value, opt, param.ref_diff, param.ref_rel, param.opt_rel)
    return dict(zip(param_column_names(name), values, strict=True))


#: Per-row arrays: the loss history, every round's time (stats["data"], empty in files saved without it), and the
#: names of the row's parameters (whose columns ``param_columns`` makes).
IN_MEMORY = ["losses", "samples", "param_names"]
#: Columns of the bandwidth floor: one streaming read of a problem's data (the seed's x and y, or another problem's
#: ``floor_bytes``: ``problem`` is its label, as the trainers' rows have it) per machine, run, size and dtype.
FLOOR_COLUMNS = ["machine", "run", "problem", "device", "n", "dtype", "floor_s", "bandwidth_Bps", "method",
                 "data_bytes"]  # fmt: skip
#: The floor each trainer device reads through (JAX's "gpu" is a CUDA device's memory).
FLOOR_DEVICE = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}
#: Columns of the skipped benchmarks' list.
SKIPPED_COLUMNS = ["machine", "run", "trainer", "dtype", "reason"]


def native_role(roles: tuple[str, ...] | list[str]) -> str:
    """The native role among a record's roles ("native loop", "CPU limit", ...), "" for a framework's trainer."""
    return next((role for role in roles if role in NATIVE_ROLES), "")


def gpu_label(env: dict) -> str:
    """The GPU of a run's ``machine_info["regbench"]`` in one line: name, memory, driver, CUDA; "none" without."""
    gpu = env.get("gpu")
    if not gpu:
        return "none"
    if not isinstance(gpu, dict):  # files saved before the GPU record had fields
        return str(gpu)
    facts = [f"{gpu['total_memory_bytes'] / 2**30:.0f} GiB" if gpu.get("total_memory_bytes") else "",
             f"driver {gpu['driver_version']}" if gpu.get("driver_version") else "",
             f"CUDA {gpu['cuda_runtime_version']}" if gpu.get("cuda_runtime_version") else ""]  # fmt: skip
    return f"{gpu.get('name', 'GPU')} ({', '.join(f for f in facts if f)})"


def precision_label(policy: dict) -> str:
    """A run's GPU precision policy (``machine_info["regbench"]["precision"]``, bench.gpu.precision_settings) in one
    line: each framework switch, then the environment variables that are set; "not recorded" without one."""
    if not policy:
        return "not recorded"
    switches = ", ".join(f"{key}={value}" for key, value in policy.items() if not key.isupper())
    env = ", ".join(f"{key}={value}" for key, value in policy.items() if key.isupper() and value is not None)
    return f"{switches}; environment: {env or 'no precision variable set'}"


class LoadError(Exception):
    """A path that is not a readable saved benchmark run; the message names it."""


@dataclass
class Runs:
    """Every benchmark of the loaded runs, the environment of each, what was skipped, what could not be read."""

    table: pd.DataFrame
    floor: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLOOR_COLUMNS))
    machines: dict[tuple[str, str], dict] = field(default_factory=dict)  # (machine, run) -> machine_info
    errors: list[str] = field(default_factory=list)
    #: Benchmarks selected but skipped, with the reason recorded while the run happened.
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    #: The small problems' data, by (machine, run): [(problem record, x, y)], for the fitted-curve chart.
    problems: dict[tuple[str, str], list] = field(default_factory=dict)
    #: Whether each run was quick (``regbench run --quick``: fewer rounds, the tutorial's problem only).
    quick: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: Each run's depth (records.model.RunFacts.depth: "quick", "default", "full"; None before depths).
    depth: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: The frameworks each run benchmarked in a process of their own, in order; [] where it ran in one process.
    processes: dict[tuple[str, str], list[str]] = field(default_factory=dict)


#: A saved run's file name, as pytest-benchmark numbers them.
RUN_FILE = re.compile(r"^\d{4}_.*\.json$", re.DOTALL)


def shown(path: Path | str) -> str:
    """A path as text every output takes: bytes of its name that are not UTF-8 (which Python keeps as lone
    surrogates) shown as ``\\xNN`` escapes, so a CSV, a chart or a terminal never fails on them."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _runs_in(folder: Path) -> list[Path]:
    """The saved run files directly in ``folder`` (no pipes or devices), oldest first; OSError if it cannot be
    listed (pathlib's glob would pass over such a folder without a word)."""
    return sorted(folder / name for name in os.listdir(folder) if RUN_FILE.match(name) and (folder / name).is_file())


def run_files(path: Path, errors: list[str] | None = None) -> list[Path]:
    """The saved JSON files a path stands for: the path itself, or its runs if it is a machine folder (it holds
    ``NNNN_*.json`` files) and those of each machine folder below it. Other files (notes, other tools' JSON) are
    no machine's runs and change nothing. A machine folder below that cannot be listed is named in ``errors``
    (when given, else it is a LoadError) and passed over."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise LoadError(f"{shown(path)}: no such file or folder") from None
    except OSError as exc:  # a name too long, a folder on the way that cannot be entered
        raise LoadError(f"{shown(path)}: cannot be read ({exc.strerror})") from None
    if stat_kinds.S_ISREG(mode):
        return [path]
    if not stat_kinds.S_ISDIR(mode):  # a device, a pipe: reading it could block or never end
        raise LoadError(f"{shown(path)}: not a file or folder")
    try:
        own = _runs_in(path)
        # Hidden folders are not machines (``regbench run`` stages its runs in one).
        folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:  # a folder that cannot be listed
        raise LoadError(f"{shown(path)}: cannot be read ({exc.strerror})") from None
    files = own
    for folder in folders:
        try:
            saved = _runs_in(folder)
        except OSError as exc:
            message = f"{shown(folder)}: cannot be listed ({exc.strerror}); its runs are left out"
            if errors is None:
                raise LoadError(message) from None
            errors.append(message)
            continue
        files.extend(saved)
    if not files:
        raise LoadError(f"{shown(path)}: no saved benchmark runs (NNNN_name.json) in it")
    return files


def _read(path: Path) -> Run:
    """The file's record, upgraded to the current schema and validated (records.model)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{shown(path)}: not readable as JSON ({exc})") from None
    except RecursionError:
        raise LoadError(f"{shown(path)}: not readable as JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or "machine_info" not in data:
        raise LoadError(f"{shown(path)}: not a pytest-benchmark file (no 'benchmarks' and 'machine_info')")
    written, installed = str(data.get("version", "0")), _installed_pytest_benchmark()
    if _major(written) > _major(installed):
        raise LoadError(
            f"{shown(path)}: written by pytest-benchmark {written}, a newer format than the installed {installed}"
        )
    try:
        return validate_run(data)
    except InvalidRecord as exc:
        raise LoadError(f"{shown(path)}: not a regbench run: {exc}") from None


@functools.cache
def _installed_pytest_benchmark() -> str:
    try:
        return importlib.metadata.version("pytest-benchmark")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


@dataclass
class Saved:
    """One readable saved file: where it is, its validated record, and the machine and run it is shown as."""

    path: Path
    record: Run
    machine: str = ""
    run: str = ""

    @property
    def machine_info(self) -> dict:
        return self.record.machine_info.model_dump()

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        """What tells machines apart, as the record says it: node name, CPU, GPU."""
        info = self.record.machine_info
        cpu = info.cpu.brand_raw or info.processor or ""
        return ("node", info.node), ("CPU", cpu), ("GPU", gpu_label(info.regbench.model_dump()))

    @functools.cached_property
    def rows(self) -> list[dict]:
        """The trainers' rows of the tidy table (made once: the report and its history share them)."""
        return [_row(b, self) for b in self.record.fits]

    def floor_rows(self) -> list[dict]:
        """The bandwidth floor's rows."""
        rows = []
        for bench in self.record.floors:
            info = bench.extra_info
            floor_s = bench.stats.median if info.floor_s is None else info.floor_s
            # An older run's floor that left its bytes out read the seed's x and y of n points.
            data_bytes = info.data_bytes or 2 * info.n * np.dtype(info.dtype).itemsize
            rows.append({"machine": self.machine, "run": self.run, "problem": info.problem_label,
                         "device": info.device, "n": info.n, "dtype": info.dtype, "floor_s": floor_s,
                         "bandwidth_Bps": info.bandwidth_Bps, "method": info.method,
                         "data_bytes": data_bytes})  # fmt: skip
        return rows

    def skipped_rows(self) -> list[dict]:
        """The benchmarks that were skipped, and those that failed (their reason says so), with why."""
        return [{"machine": self.machine, "run": self.run, "trainer": o.trainer or o.test, "dtype": o.dtype or "",
                 "reason": o.reason if o.outcome == "skipped" else f"failed: {o.reason}"}
                for o in self.record.regbench.outcomes if o.outcome != "passed"]  # fmt: skip


def read_run(path: Path) -> Saved:
    """One saved file, validated and labelled by its folder and name; LoadError (naming the file) if unreadable."""
    return Saved(path, _read(path), machine=shown(path.parent.name), run=shown(path.stem))


def label(saved: list[Saved]) -> list[Saved]:
    """Name each run's machine and run (see the module's rules); returns the runs, each one once."""
    by_folder_name: dict[str, set] = {}
    for s in saved:
        by_folder_name.setdefault(shown(s.path.parent.name), set()).add(s.identity)
    out, seen = [], set()
    for s in saved:
        stem = shown(s.path.stem)
        identities = by_folder_name[shown(s.path.parent.name)]
        s.machine = shown(s.path.parent.name)
        if len(identities) > 1:
            differ = [i for i in range(len(s.identity)) if len({other[i] for other in identities}) > 1]
            s.machine += " (" + ", ".join(f"{s.identity[i][0]} {s.identity[i][1] or '?'}" for i in differ) + ")"
        key = (s.machine, stem, s.record.datetime)
        if key in seen:
            continue
        seen.add(key)
        # Two runs of one machine and name saved at different times (two copies of a storage): told apart by time.
        clash = any((o.machine, o.run) == (s.machine, stem) for o in out)
        s.run = f"{stem} ({s.record.datetime or len(out)})" if clash else stem
        out.append(s)
    return out


def _row(bench: Benchmark, saved: Saved) -> dict:
    info, stats = bench.extra_info, bench.stats
    row = info.model_dump(include=set(COLUMNS))
    for name, param in info.params.items():
        row.update(param_columns(name, param))
    row["param_names"] = list(info.params)
    roles = tuple(info.roles)
    row.update(
        machine=saved.machine,
        run=saved.run,
        problem=info.problem.label,
        group=bench.group,
        roles=roles,
        native=native_role(roles),
        reference=REFERENCE in roles,
        memory_ratio=info.peak_bytes / info.data_bytes if info.peak_bytes is not None and info.data_bytes else None,
        median_s=stats.median,
        iqr_s=stats.iqr,
        q1_s=stats.q1,
        q3_s=stats.q3,
        min_s=stats.min,
        rounds=stats.rounds,
        per_epoch_s=stats.median / info.epochs,
        file=shown(saved.path),
        losses=np.asarray(info.losses, dtype=float),
        samples=np.asarray(stats.data or [], dtype=float),
    )
    return row


@dataclass
class Catalogue:
    """Every readable saved file under some paths, read and validated once, labelled; and what could not be read.

    ``by_folder``: each machine folder's runs, oldest first (by file name).
    """

    by_folder: dict[Path, list[Saved]]
    errors: list[str]

    @property
    def latest(self) -> list[Saved]:
        """Each machine folder's newest readable run."""
        return [runs[-1] for runs in self.by_folder.values() if runs]

    @property
    def all(self) -> list[Saved]:
        return [s for runs in self.by_folder.values() for s in runs]


def _saved_files(paths: list[Path], errors: list[str]) -> dict[Path, list[Path]]:
    """Every saved file under ``paths``, by machine folder, oldest first, each file once (however it was reached);
    a path with none is noted in ``errors``."""
    by_folder: dict[Path, list[Path]] = {}
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            files = run_files(Path(path), errors=errors)
        except LoadError as exc:
            errors.append(str(exc))
            continue
        for file in files:
            stat = os.stat(file)
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            by_folder.setdefault(file.parent, []).append(file)
    return by_folder


def read(paths: list[Path], latest: bool = False) -> Catalogue:
    """Read and validate every saved file under ``paths`` once (with ``latest``, only each machine folder's newest
    readable one: newer files that cannot be read are named in ``errors``); LoadError only when none could be read."""
    errors: list[str] = []
    by_folder: dict[Path, list[Saved]] = {}
    for folder, files in _saved_files(paths, errors).items():
        for file in reversed(files) if latest else files:
            try:
                by_folder.setdefault(folder, []).append(read_run(file))
            except LoadError as exc:
                errors.append(str(exc))
                continue
            if latest:
                break
    if not any(by_folder.values()):
        raise LoadError("; ".join(errors) or "nothing to load")
    label([s for runs in by_folder.values() for s in runs])
    return Catalogue(by_folder, errors)


def tidy(saved: list[Saved], errors: list[str] | None = None) -> Runs:
    """The tidy tables of some read runs (each run once, as ``label`` names it)."""
    rows, floors, skipped, machines, problems, quick, processes, seen = [], [], [], {}, {}, {}, {}, set()
    depth = {}
    for s in saved:
        if (s.machine, s.run) in seen:  # a copy of a run (label() names it like its original)
            continue
        seen.add((s.machine, s.run))
        rows.extend(s.rows)
        floors.extend(s.floor_rows())
        skipped.extend(s.skipped_rows())
        machines[(s.machine, s.run)] = s.machine_info
        quick[(s.machine, s.run)] = s.record.regbench.quick
        depth[(s.machine, s.run)] = s.record.regbench.depth
        processes[(s.machine, s.run)] = s.record.regbench.processes
        problems[(s.machine, s.run)] = [
            (p.problem, np.asarray(p.x), np.asarray(p.y)) for p in s.record.regbench.problems
        ]
    # The parameters' columns, in the order their records name them (the seed's w, b; linear's theta, b), each once.
    names = list(dict.fromkeys(name for row in rows for name in row["param_names"]))
    columns = [*COLUMNS, *(c for name in names for c in param_column_names(name))]
    table = pd.DataFrame(rows, columns=[*columns, *IN_MEMORY])
    floor = pd.DataFrame(floors, columns=FLOOR_COLUMNS)
    if not floor.empty:
        # Each trainer row's share of the floor: the time to read its data once, over its time per epoch. Matched
        # by the bytes read, not by n: linear's X at n points is d times the seed's x (a run of --sweep has both).
        # Two problems' floors can read as many bytes (linear at d = 1 and the seed): a row takes its own
        # problem's, else any of as many bytes, and never two.
        keys = ["machine", "run", "floor_device", "read_bytes", "dtype"]
        floors = floor.rename(columns={"device": "floor_device", "data_bytes": "read_bytes"})[
            [*keys, "problem", "floor_s"]
        ]
        seed_bytes = 2 * table["n"] * table["dtype"].map(lambda d: np.dtype(d).itemsize)
        table = table.assign(floor_device=table["device"].map(FLOOR_DEVICE),
                             read_bytes=table["data_bytes"].fillna(seed_bytes)).drop(columns="floor_s")  # fmt: skip
        own = table.merge(floors.drop_duplicates([*keys, "problem"]), on=[*keys, "problem"], how="left")["floor_s"]
        alike = table.merge(floors.drop_duplicates(keys).drop(columns="problem"), on=keys, how="left")["floor_s"]
        table = table.assign(floor_s=own.fillna(alike).to_numpy())[[*columns, *IN_MEMORY]]
        table["floor_fraction"] = table["floor_s"] / table["per_epoch_s"]
    table["compute_s"] = _compute_limits(table, machines)
    table["roofline_s"] = table[["compute_s", "floor_s"]].max(axis=1, skipna=False)
    return Runs(table=table, floor=floor, machines=machines, errors=list(errors or []),
                skipped=pd.DataFrame(skipped, columns=SKIPPED_COLUMNS), problems=problems, quick=quick, depth=depth,
                processes=processes)  # fmt: skip


def _compute_limits(table: pd.DataFrame, machines: dict[tuple[str, str], dict]) -> pd.Series:
    """Each CPU row's compute limit: its epoch's FLOPs (the record's ``flops``) over its run's matrix-product rate
    in its dtype (the machine record's ``matmul``, bench.compute); NaN where either is unknown."""
    rates = [((machines.get((m, r)) or {}).get("regbench") or {}).get("matmul") or {}
             for m, r in zip(table["machine"], table["run"], strict=True)]  # fmt: skip
    rate = pd.Series([found.get(dtype) for found, dtype in zip(rates, table["dtype"], strict=True)], index=table.index,
                     dtype=float)  # fmt: skip
    return (table["flops"].astype(float) / rate).where(table["device"] == "cpu")


def load(paths: list[Path], latest: bool = True) -> Runs:
    """Load saved runs; raises LoadError only when none of them could be read.

    With ``latest``, each machine folder's newest *readable* run is taken: newer files that cannot be read are
    skipped, each named with its reason in ``errors``.
    """
    catalogue = read(paths, latest=latest)
    return tidy(catalogue.all, catalogue.errors)
