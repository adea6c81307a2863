"""Loading saved ``pytest bench`` runs into one tidy pandas table.

Rules: storage is read, never written. A path is a storage folder (machine
folders below it, as pytest-benchmark lays them out), one machine's folder, or
a saved JSON file. From a folder the latest readable run of each machine is
taken unless ``latest=False``. A file that cannot be read (not JSON, truncated,
empty, not pytest-benchmark's, or a major format version newer than the
installed pytest-benchmark's) becomes a ``LoadError`` naming it and why; the
good files are still loaded.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from backends._registry import NATIVE_ROLES, roles_of

#: Columns of the tidy table, in order (``IN_MEMORY``'s arrays follow them, and are not written to CSV).
COLUMNS = [
    "machine", "run", "kind", "group", "trainer", "backend", "device", "variant", "dtype", "n", "epochs", "lr",
    "workers", "threads", "allreduce_s", "worker_peak_bytes",
    "median_s", "iqr_s", "q1_s", "q3_s", "min_s", "rounds", "per_epoch_s", "prepare_s", "first_call_s", "result_s",
    "cold_start_s", "warm_start_s", "fresh_fit_s", "peak_bytes", "data_bytes", "memory_ratio", "floor_s",
    "floor_fraction",
    "w", "b", "final_loss", "opt_distance", "loss_gap", "ref_dw", "ref_db", "ref_loss_rel", "diverged", "file",
]  # fmt: skip
#: Per-row arrays: the loss history and every round's time (stats["data"], empty in files saved without it).
IN_MEMORY = ["losses", "samples"]
#: Columns of the bandwidth floor: one streaming read of x and y per machine, run, size and dtype.
FLOOR_COLUMNS = ["machine", "run", "device", "n", "dtype", "floor_s", "bandwidth_Bps", "method"]
#: The floor each trainer device reads through (JAX's "gpu" is a CUDA device's memory).
FLOOR_DEVICE = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}


def native_role(trainer_id: str) -> str:
    """The registry's native role of a trainer ("native loop", "CPU limit", ...), "" for a framework's trainer."""
    return next((role for role in roles_of(trainer_id) if role in NATIVE_ROLES), "")


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


class LoadError(Exception):
    """A path that is not a readable saved benchmark run; the message names it."""


@dataclass
class Runs:
    """Every benchmark of the loaded runs, the environment of each, and what could not be read."""

    table: pd.DataFrame
    floor: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLOOR_COLUMNS))
    machines: dict[tuple[str, str], dict] = field(default_factory=dict)  # (machine, run) -> machine_info
    errors: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> pd.DataFrame:
        """Trainers known to the suite that did not run, with the reason recorded at run time."""
        rows = [
            {"machine": m, "run": r, "trainer": tid, "reason": reason}
            for (m, r), info in self.machines.items()
            for tid, reason in info.get("regbench", {}).get("unavailable", {}).items()
        ]
        return pd.DataFrame(rows, columns=["machine", "run", "trainer", "reason"])


def run_files(path: Path, latest: bool = True) -> list[Path]:
    """The saved JSON files a path stands for."""
    if not path.exists():
        raise LoadError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    # Hidden folders are not machines (``regbench run`` stages its runs in one).
    folders = (
        [path]
        if any(path.glob("*.json"))
        else sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    files = []
    for folder in folders:
        saved = sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.json"))
        files.extend(saved[-1:] if latest else saved)
    if not files:
        raise LoadError(f"{path}: no saved benchmark runs (NNNN_name.json) in it")
    return files


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or "machine_info" not in data:
        raise LoadError(f"{path}: not a pytest-benchmark file (no 'benchmarks' and 'machine_info')")
    written, installed = str(data.get("version", "0")), _installed_pytest_benchmark()
    if _major(written) > _major(installed):
        raise LoadError(f"{path}: written by pytest-benchmark {written}, a newer format than the installed {installed}")
    return data


def _installed_pytest_benchmark() -> str:
    try:
        return importlib.metadata.version("pytest-benchmark")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _is_floor(bench: dict) -> bool:
    return str(bench.get("name", "")).startswith("test_floor[")


def read_run(path: Path) -> tuple[dict, list[dict]]:
    """One saved file: its JSON and its trainers' rows of the tidy table; LoadError (naming the file) if unreadable."""
    data = _read(path)
    try:
        return data, [_row(b, path.parent.name, path.stem, path) for b in data["benchmarks"] if not _is_floor(b)]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise LoadError(f"{path}: not a regbench run (benchmark without {exc} in its record)") from None


def _floor_rows(data: dict, path: Path) -> list[dict]:
    """The bandwidth floor's rows of a readable file (a malformed floor record is left out, not fatal)."""
    rows = []
    for bench in filter(_is_floor, data["benchmarks"]):
        try:
            info = bench["extra_info"]
            floor_s = info.get("floor_s", bench["stats"]["median"])
            rows.append({"machine": path.parent.name, "run": path.stem, "device": info.get("device", "cpu"),
                         "n": info["n"], "dtype": info["dtype"], "floor_s": floor_s,
                         "bandwidth_Bps": info["bandwidth_Bps"], "method": info["method"]})  # fmt: skip
        except (KeyError, TypeError):
            continue
    return rows


def _row(bench: dict, machine: str, run: str, path: Path) -> dict:
    info, stats = bench["extra_info"], bench["stats"]
    row = {k: info.get(k) for k in COLUMNS if k in info}
    if info.get("peak_bytes") is not None:
        row["memory_ratio"] = info["peak_bytes"] / info["data_bytes"]
    row.update(
        workers=info.get("workers", 1),  # files saved before data-parallel trainers: one process
        machine=machine,
        run=run,
        kind=bench["name"].split("[", 1)[0].removeprefix("test_"),
        group=bench.get("group"),
        median_s=stats["median"],
        iqr_s=stats["iqr"],
        q1_s=stats["q1"],
        q3_s=stats["q3"],
        min_s=stats["min"],
        rounds=stats["rounds"],
        per_epoch_s=stats["median"] / info["epochs"],
        file=str(path),
        losses=np.asarray(info.get("losses", []), dtype=float),
        samples=np.asarray(stats.get("data") or [], dtype=float),
    )
    return row


def saved_files(paths: list[Path], errors: list[str]) -> dict[Path, list[Path]]:
    """Every saved file under ``paths``, by machine folder, oldest first; a path with none is noted in ``errors``."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        try:
            files = run_files(Path(path), latest=False)
        except LoadError as exc:
            errors.append(str(exc))
            continue
        for file in files:
            by_folder.setdefault(file.parent, []).append(file)
    return by_folder


def load(paths: list[Path], latest: bool = True) -> Runs:
    """Load saved runs; raises LoadError only when none of them could be read.

    With ``latest``, each machine's newest *readable* run is taken: newer files that cannot be read are
    skipped, each named with its reason in ``errors``.
    """
    rows, floors, machines, errors = [], [], {}, []
    for folder_files in saved_files(paths, errors).values():
        for file in reversed(folder_files) if latest else folder_files:
            try:
                data, new = read_run(file)
            except LoadError as exc:
                errors.append(str(exc))
                continue
            rows.extend(new)
            floors.extend(_floor_rows(data, file))
            machines[(file.parent.name, file.stem)] = data["machine_info"]
            if latest:
                break
    if not rows and not machines:
        raise LoadError("; ".join(errors) or "nothing to load")
    table = pd.DataFrame(rows, columns=[*COLUMNS, *IN_MEMORY])
    floor = pd.DataFrame(floors, columns=FLOOR_COLUMNS)
    if not floor.empty:
        # Each trainer row's share of the floor: the time to read its x and y once, over its time per epoch.
        keys = ["machine", "run", "floor_device", "n", "dtype"]
        floors = floor.rename(columns={"device": "floor_device"})[[*keys, "floor_s"]]
        table = table.assign(floor_device=table["device"].map(FLOOR_DEVICE)).drop(columns="floor_s")
        table = table.merge(floors, on=keys, how="left")[[*COLUMNS, *IN_MEMORY]]
        table["floor_fraction"] = table["floor_s"] / table["per_epoch_s"]
    return Runs(table=table, floor=floor, machines=machines, errors=errors)
