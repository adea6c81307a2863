"""Issue 16's battery: every bad input gets one clear line and the right exit status, no traceback, no lost run.

CLI cases run ``regbench`` (in this process, and one case of each check in a fresh one) and assert the exit
status, the one line on stderr and, where a storage is involved, that its bytes are unchanged. Exit statuses: 0
ok, 1 regression or unmet target or failed benchmark, 2 unusable input, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import backends
from bench.params import in_process_ids, trainer_params
from regbench import cli
from regbench import run as supervisor
from reports import tables
from reports.history import collect
from reports.load import load, read
from tests.concurrent_save import save_at_once
from tests.fake_pytest import RUN, FakePytest
from tests.test_history import TRAINER_BENCHMARKS
from tests.test_reports import MACHINE, NEW, STORAGE, fingerprint
from tests.tiers import slow_if_per_size

ROOT = Path(__file__).resolve().parents[1]
#: Variables that would point the frameworks' caches elsewhere than the defaults a fresh user has.
CACHE_VARIABLES = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
#: A selection of one quick benchmark: the fused NumPy loop on the tutorial's problem, one timed round.
TINY = ["-k", "seed100 and numpy-manual-fused-cpu and float64", "-m", "not sweep", "--no-cold-start",
        "--regbench-rounds=1"]  # fmt: skip


def regbench(*args, cwd: Path | None = None, pythonpath: Path = ROOT, timeout: float | None = None,
             env: dict | None = None, fresh: bool = False, **kwargs):  # fmt: skip
    """``regbench ARGS``, its exit status and output captured as text: in this process (``cli.main``, as the
    entry point calls it: seconds saved on every case), or with ``fresh`` (or a ``cwd``, ``env``,
    ``pythonpath`` or ``timeout`` of its own: a read that could block) in a fresh process (-B: no bytecode
    written), where ``env`` is the whole environment (PYTHONPATH added), the test's own by default. Each check
    keeps one fresh-process case, so that what only a real process shows (an exit status, a traceback before
    main) is still seen."""
    if not (fresh or kwargs or cwd is not None or env is not None or pythonpath != ROOT or timeout is not None):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main([str(arg) for arg in args])
            except SystemExit as exc:  # argparse's way out, as in the entry point
                status = exc.code
        return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(pythonpath)}
    cmd = [sys.executable, "-B", "-m", "regbench", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout or 300, **kwargs)


def one_line(proc, status: int, *fragments: str) -> str:
    """Assert exit ``status`` and a single stderr line, without a traceback, holding every fragment; returns it."""
    err = proc.stderr.strip()
    assert proc.returncode == status, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    assert err.count("\n") == 0, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def write_run(folder: Path, name: str, change=None) -> Path:
    """The NEW fixture run saved as ``folder/<its machine>/name``, after ``change(data)``."""
    data = json.loads(NEW.read_text())
    if change is not None:
        change(data)
    path = folder / MACHINE.name / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def first(kind: str):
    """The first benchmark of ``kind`` ("fit", "floor") of a record."""
    return lambda data: next(b for b in data["benchmarks"] if b["name"].startswith(f"test_{kind}["))


def setter(where, key: str, value):
    def change(data):
        where(data)[key] = value

    return change


FIT, FLOOR = first("fit"), first("floor")
FIT_NAME = "test_fit[numpy-manual-tutorial-cpu-float32]"


def duplicate(data):
    data["benchmarks"].append({**copy.deepcopy(FIT(data)), "name": "test_fit[again]"})


# --- 1. saved records: validated once, one line naming the file, the benchmark and the field, exit 2 ----------

BAD_RECORDS = {
    "a string for a count": (setter(lambda d: FIT(d)["extra_info"], "epochs", "800"), [FIT_NAME, "extra_info.epochs"]),
    "a null median": (setter(lambda d: FIT(d)["stats"], "median", None), [FIT_NAME, "stats.median"]),
    "a string among the rounds": (lambda d: FIT(d)["stats"]["data"].__setitem__(3, "fast"), ["stats.data.3"]),
    "a negative time": (setter(lambda d: FIT(d)["stats"], "min", -1.0), [FIT_NAME, "stats.min"]),
    "losses not a list": (setter(lambda d: FIT(d)["extra_info"], "losses", {"a": 1}), ["extra_info.losses"]),
    "an unknown dtype": (setter(lambda d: FIT(d)["extra_info"], "dtype", "float16"), ["extra_info.dtype"]),
    "zero points": (setter(lambda d: FIT(d)["extra_info"], "n", 0), ["extra_info.n"]),
    "a word for a flag": (setter(lambda d: FIT(d)["extra_info"], "diverged", "yes"), ["extra_info.diverged"]),
    "no trainer": (lambda d: FIT(d)["extra_info"].pop("trainer"), [FIT_NAME, "extra_info.trainer", "required"]),
    "a bad floor": (setter(lambda d: FLOOR(d)["extra_info"], "n", -1), ["test_floor[", "extra_info.n"]),
    "a number for a name": (setter(lambda d: d["benchmarks"][2], "name", 5), ["benchmark #2", "name"]),
    "environment a list": (setter(lambda d: d["machine_info"], "regbench", []), ["machine_info.regbench"]),
    "a number for a reason": (
        setter(lambda d: d["machine_info"]["regbench"], "unavailable", {"x": 5}),
        ["machine_info.regbench.unavailable.x"],
    ),
    "no benchmarks": (setter(lambda d: d, "benchmarks", []), ["field benchmarks"]),
    "a benchmark twice": (duplicate, [FIT_NAME, "test_fit[again]", "same kind, problem, trainer, dtype"]),
    "absurd nesting": (None, ["nested too deeply"]),  # deeper than any JSON parser recurses: written as text
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_bad_record_is_one_line_naming_file_benchmark_and_field(tmp_path, case):
    change, fragments = BAD_RECORDS[case]
    if change is None:
        path = tmp_path / MACHINE.name / "0001_bad.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"benchmarks": ' + "[" * 100_000 + "]" * 100_000 + ', "machine_info": {}}')
    else:
        path = write_run(tmp_path, "0001_bad.json", change)
    before = fingerprint(tmp_path)
    fresh = case == "no benchmarks"  # one case in a fresh process, where an exit status is a process's
    one_line(regbench("report", path, "--out", tmp_path / "out", fresh=fresh), 2, str(path), *fragments)
    # compare reads it through the same gate
    one_line(regbench("compare", NEW, path, fresh=fresh), 2, str(path), *fragments)
    assert fingerprint(tmp_path) == before  # nothing written: no report folder, the record untouched


def test_fields_regbench_does_not_read_pass_untouched(tmp_path):
    """Only what regbench reads is held to a type: a nested extra field (as pytest-benchmark may add) is fine."""
    path = write_run(tmp_path, "0001_extra.json", lambda d: d["machine_info"].update(
        {"nested": json.loads("[" * 500 + "]" * 500), "cpu": {**d["machine_info"]["cpu"], "flags": 7}}))  # fmt: skip
    runs = load([path])
    assert len(runs.table) == TRAINER_BENCHMARKS
    assert runs.machines[(MACHINE.name, "0001_extra")]["cpu"]["flags"] == 7


@pytest.mark.parametrize("kind", ["a pipe", "/dev/zero", "/dev/null"])
def test_a_pipe_or_a_device_is_refused_not_read(tmp_path, kind):
    """Reading a pipe with no writer would block forever, /dev/zero would never end."""
    path = tmp_path / "0001_pipe.json"
    if kind == "a pipe":
        os.mkfifo(path)
    else:
        path = Path(kind)
    one_line(regbench("report", path, "--out", tmp_path / "out", timeout=60), 2, str(path), "not a file or folder")


@pytest.mark.slow  # a fresh process and a whole report
def test_a_pipe_in_a_storage_is_passed_over(tmp_path):
    """A pipe named like the newest run (nothing would ever write it): the run before it is reported."""
    good = write_run(tmp_path, "0001_good.json")
    os.mkfifo(good.with_name("0002_pipe.json"))
    before = fingerprint(tmp_path)
    proc = regbench("report", tmp_path, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(pd.read_csv(tmp_path / "out" / "results.csv")["run"]) == {"0001_good"}
    shutil.rmtree(tmp_path / "out")
    assert fingerprint(tmp_path) == before


# --- 2. folders checked before any work; a saved run never lost -------------------------------------------------


@pytest.mark.parametrize(
    ("command", "option"),
    [(["run"], "--storage"), (["run"], "--out"), (["report", NEW], "--out"), (["history", STORAGE], "--out")],
)
@pytest.mark.parametrize("place", ["a file", "under a file"])
def test_an_unusable_folder_is_refused_before_any_work(tmp_path, command, option, place):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    folder = afile if place == "a file" else afile / "sub"
    folders = {"--storage": tmp_path / "storage", "--out": tmp_path / "out"} if command == ["run"] else {}
    folders[option] = folder
    tiny = ["--", *TINY] if command == ["run"] else []
    proc = regbench(*command, *[part for pair in folders.items() for part in pair], *tiny)
    one_line(proc, 2, f"{option} {folder}", "not a folder")
    assert "running:" not in proc.stdout  # no benchmark started
    assert afile.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing created either


def test_a_run_whose_report_fails_keeps_its_saved_run_and_says_where(tmp_path, monkeypatch, capsys):
    storage = tmp_path / "storage"

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(supervisor.subprocess, "Popen", FakePytest)
    monkeypatch.setattr("reports.render.write_report", fail)
    assert cli.main(["run", "--storage", str(storage), "--out", str(tmp_path / "out")]) == 2
    saved = storage / RUN.parent.name / "0001_run.json"
    assert json.loads(saved.read_text())["benchmarks"] == json.loads(RUN.read_text())["benchmarks"]
    out, err = capsys.readouterr()
    assert f"saved: {saved}" in out
    assert err.count("\n") == 1
    assert "No space left on device" in err
    assert f"the run is saved: {saved}" in err


def test_errors_while_collecting_are_a_failed_run_not_an_interruption(tmp_path, monkeypatch, capsys):
    class Broken(FakePytest):  # a benchmark module that does not import: pytest's exit status 2 while collecting
        plan_status = 2

    monkeypatch.setattr(supervisor.subprocess, "Popen", Broken)
    assert cli.main(["run", "--storage", str(tmp_path / "storage"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err == ("regbench: the benchmark run failed (pytest exit status 2: errors while collecting the "
                   "benchmarks); nothing saved, no report written\n")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_process_with_failed_benchmarks_costs_only_its_own_figures(tmp_path, monkeypatch, capsys):
    """A plugin's trainer that raises fails its benchmarks; the other processes run, and the run is saved and
    reported with the failure listed, exit status 1."""

    class OneFails(FakePytest):
        frameworks = ("numpy", "autograd")
        failing = ("autograd",)
        commands: ClassVar[list] = []

    monkeypatch.setattr(supervisor.subprocess, "Popen", OneFails)
    storage, out = tmp_path / "storage", tmp_path / "out"
    assert cli.main(["run", "--storage", str(storage), "--out", str(out)]) == 1
    (saved,) = storage.glob("*/0001_run.json")
    err = capsys.readouterr().err
    assert err == (f"regbench: benchmarks failed in the autograd process (the report lists them); the others are "
                   f"saved: {saved}\n")  # fmt: skip
    assert len([c for c in OneFails.commands if any(a.startswith("--regbench-framework=") for a in c)]) == 2
    outcomes = json.loads(saved.read_text())["regbench"]["outcomes"]
    assert {"trainer": "autograd-x", "outcome": "failed", "reason": "KeyError: 1"}.items() <= outcomes[-1].items()
    report = (out / "report.md").read_text()
    skipped = report[report.index("## Skipped and failed trainers") :]
    assert "failed: KeyError: 1: autograd-x" in skipped.splitlines()[2], skipped[:300]


# --- 3. a gate that cannot be fooled ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-slowdown", v) for v in ("nan", "inf", "-inf", "0", "-0.1", "fast")]
    + [
        ("--threshold", "NaN"),
        ("--alpha", "0"),
        ("--alpha", "1"),
        ("--alpha", "nan"),
        ("--max-drift", "nan"),
        ("--max-drift", "-1"),
        ("--max-drift", "0"),
        ("--max-drift", "inf"),
    ],
)
def test_thresholds_must_be_finite_and_positive(option, value):
    # With "=": argparse would take "-inf" for an option.
    proc = regbench("compare", NEW, NEW, f"{option}={value}", fresh=(option, value) == ("--alpha", "0"))
    one_line(proc, 2, "compare: argument", option, f"got {value!r}")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.update(benchmarks=[]), "field benchmarks"),
        (
            lambda d: d.update(benchmarks=[b for b in d["benchmarks"] if b["name"].startswith("test_floor[")]),
            "no trainer benchmarks to compare",
        ),
        (duplicate, "measure the same thing"),
    ],
    ids=["empty", "only the floor", "duplicated"],
)
def test_an_empty_or_duplicated_new_is_an_error(tmp_path, change, why):
    new = write_run(tmp_path, "0002_new.json", change)
    before = fingerprint(tmp_path)
    one_line(regbench("compare", NEW, new), 2, str(new), why)
    one_line(regbench("compare", new, NEW), 2, str(new), why)  # as BASE too
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["compare", "only-one"], ["report", "--bogus"]])
def test_a_bad_command_line_is_one_line(argv):
    one_line(regbench(*argv, fresh=not argv), 2, "regbench: error:", "--help")


# --- 4. Ctrl-C ----------------------------------------------------------------------------------------------------


@pytest.mark.slow  # a real `regbench run` in a subprocess, interrupted
def test_ctrl_c_during_a_run_saves_nothing_and_exits_130(tmp_path):
    storage = tmp_path / "storage"
    earlier = write_run(storage, "0001_before.json")
    before = fingerprint(storage)
    # 5000 rounds of the tutorial loop (~40 s): always still running when interrupted.
    slow = ["-k", "seed100 and numpy-manual-tutorial-cpu and float64", "-m", "not sweep", "--regbench-rounds=5000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A shell's background job ignores SIGINT, and a child inherits that: Python's handler is put back, as a
    # terminal has it (not with preexec_fn: forking a process that holds JAX's threads is what JAX warns about).
    interruptible = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); " \
                    "from regbench.cli import main; sys.exit(main(sys.argv[1:]))"  # fmt: skip
    cmd = [sys.executable, "-B", "-c", interruptible, "run", "--storage", str(storage), "--out", str(tmp_path / "out"),
           "--", *slow]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("running:")
    time.sleep(4)  # pytest is importing, collecting or timing by now
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - start < 60  # stopped, not run to its end
    assert proc.returncode == 130, err
    assert err.strip() == "regbench: interrupted: nothing saved"
    assert "KeyboardInterrupt" in out  # pytest's own report of it, on stdout
    assert fingerprint(storage) == before
    assert sorted(p.name for p in storage.iterdir()) == [MACHINE.name]  # its staging folder removed
    assert earlier.exists()
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_any_other_command_is_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("reports.render.write_report", interrupted)
    assert cli.main(["report", str(NEW), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err == "regbench: interrupted: nothing saved\n"


# --- 5. pytest's own messages reach the user ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["-k", "fit and ("], 2, "pytest: Wrong expression passed to '-k': fit and (: at column"),
        (["--no-such-option"], 2, "pytest: unrecognized arguments: --no-such-option"),
        (["-k", "no_benchmark_is_called_this"], 2, "the selection ran no benchmark (pytest selected none)"),
        ([*TINY, "--benchmark-skip"], 2, "the selection ran no benchmark: skipped 1 × Skipping benchmark"),
        (["--help"], 2, "pytest ran no benchmark: its options only asked it to print (--help, --version"),
        (["--version"], 2, "pytest ran no benchmark: its options only asked it to print (--help, --version"),
    ],
    ids=["bad -k", "unknown option", "nothing selected", "everything skipped", "help", "version"],
)
@pytest.mark.slow  # a `regbench run` subprocess (pytest bench inside) a case
def test_pytest_messages_reach_the_user(tmp_path, args, status, message):
    storage = tmp_path / "storage"
    proc = regbench("run", "--storage", storage, "--out", tmp_path / "out", "--", *args, fresh=True)
    line = one_line(proc, status, message)
    assert line.endswith("nothing saved")
    assert "pytest exit status" not in line
    assert not storage.exists()  # the run created it, and removed it again with nothing in it
    assert not (tmp_path / "out").exists()


# --- 6. no writes outside storage and out; an atomic save -----------------------------------------------------


@pytest.mark.slow  # a real `regbench run` from a copy of the checkout, torch compiling
def test_a_run_writes_only_its_storage_and_report_folders(tmp_path):
    """A tiny run from a copy of the checkout, with a HOME and a TMPDIR of its own: the copy, the working folder,
    HOME and TMPDIR hold only what the run made, and the frameworks' caches are in the storage (regbench.caches)."""
    checkout = tmp_path / "checkout"
    for part in ("records", "backends", "bench", "reports", "regbench", "pyproject.toml"):
        copy_ = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy_(ROOT / part, checkout / part, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                               if copy_ is shutil.copytree else {}))  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    before = fingerprint(checkout)
    listing = sorted(str(p.relative_to(checkout)) for p in checkout.rglob("*"))
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES} | {"HOME": str(home), "TMPDIR": str(tmp)}
    selection = ["-k", "seed100 and (numpy-manual-fused-cpu or torch-autograd-compiled-cpu) and float64", *TINY[2:]]
    proc = regbench("run", "--storage", "storage", "--out", "out", "--", *selection, cwd=work, pythonpath=checkout,
                    env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f"--benchmark-storage=file://{work / 'storage'}" in proc.stdout  # staged inside the storage
    (saved,) = (work / "storage").glob("*/0001_run.json")
    assert f"saved: {saved.relative_to(work)}" in proc.stdout
    assert sorted(p.name for p in work.iterdir()) == ["out", "storage"]
    assert sorted(p.name for p in (work / "storage").iterdir()) == [".cache", saved.parent.name]  # no staging left
    assert list(home.rglob("*")) == list(tmp.rglob("*")) == []
    caches = {p.name for p in (work / "storage" / ".cache").iterdir()}
    if backends.available()["torch-autograd-compiled-cpu"].ok:
        assert {"torchinductor", "matplotlib", "tmp"} <= caches
        assert list((work / "storage" / ".cache" / "tmp").glob("torchinductor_*/precompiled_headers"))
    # A HOME that cannot be written: no matplotlib warning about its config folder.
    env["HOME"] = "/dev/null/home"
    proc = regbench("run", "--storage", "storage", "--out", "out", "--", *TINY, cwd=work, pythonpath=checkout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matplotlib" not in proc.stderr.lower(), proc.stderr
    assert (work / "out" / "report.html").exists()
    assert fingerprint(checkout) == before
    assert sorted(str(p.relative_to(checkout)) for p in checkout.rglob("*")) == listing  # no .pytest_cache


@pytest.mark.slow  # 50 fresh processes a case
@pytest.mark.parametrize("locked", [True, False], ids=["locked", "link alone"])
def test_simultaneous_saves_all_survive_under_numbers_of_their_own(tmp_path, locked):
    writers = 50
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold framework threads
    barrier = context.Barrier(writers)
    processes = [context.Process(target=save_at_once, args=(str(tmp_path), i, barrier, locked)) for i in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * writers
    files = sorted((tmp_path / "machine").glob("*.json"))
    assert sorted(json.loads(f.read_text())["writer"] for f in files) == list(range(writers))  # every run kept
    numbers = [int(f.name[:4]) for f in files]
    assert len(set(numbers)) == writers  # each under a number of its own
    if locked:  # one writer at a time: no number given up
        assert numbers == list(range(1, writers + 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["machine"]  # every staging folder gone


# --- machines told apart by their records; one file read once ---------------------------------------------------


@pytest.mark.slow  # a whole report of two machines (~8 s)
def test_two_machines_of_one_folder_name_are_told_apart(tmp_path):
    """Two hosts' storages, each with the default folder name and run 0001_run, and one file named twice."""
    hosts = {}
    for host in ("hostA", "hostB"):
        hosts[host] = write_run(tmp_path / host, "0001_run.json", setter(lambda d: d["machine_info"], "node", host))
    before = {host: fingerprint(tmp_path / host) for host in hosts}
    out = tmp_path / "out"
    proc = regbench("report", tmp_path / "hostA", tmp_path / "hostB", hosts["hostA"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    csv = pd.read_csv(out / "results.csv")
    machines = {f"{MACHINE.name} (node {host})" for host in hosts}
    assert set(csv["machine"]) == machines
    assert len(csv) == 2 * TRAINER_BENCHMARKS  # hostA's file, named twice, read once
    assert (out / "losses.png").read_bytes().startswith(b"\x89PNG")  # the chart that crashed on merged machines
    md = (out / "report.md").read_text()
    assert all(machine in md for machine in machines)
    assert set(collect(read([tmp_path / host for host in hosts])).table["machine"]) == machines
    assert {host: fingerprint(tmp_path / host) for host in hosts} == before


def test_a_run_copied_or_linked_is_one_run(tmp_path):
    copy_ = write_run(tmp_path / "copy", NEW.name)
    os.link(NEW, tmp_path / "linked.json")
    runs = load([STORAGE, copy_, tmp_path / "linked.json", NEW])
    assert set(runs.table["machine"]) == {MACHINE.name}
    assert len(runs.table) == TRAINER_BENCHMARKS
    assert list(runs.machines) == [(MACHINE.name, NEW.stem)]


# --- the API's edge -----------------------------------------------------------------------------------------------


def test_the_api_refuses_wrong_argument_types():
    trainer = backends.get_trainer(backends.REFERENCE_ID)
    with pytest.raises(TypeError, match=r"problem must be a backends\.Problem, got tuple"):
        trainer.fit((np.zeros(3), np.zeros(3)), backends.TrainConfig())
    with pytest.raises(TypeError, match=r"config must be a backends\.TrainConfig, got dict"):
        trainer.fit(backends.seed_problem(), {"epochs": 3})
    with pytest.raises(TypeError, match="trainer_id must be a string"):
        backends.get_trainer([backends.REFERENCE_ID])


def test_a_peak_below_the_resolution_is_never_a_false_zero(tmp_path):
    """A fit that adds less than a page: "< 4 kB", and below 4 kB over its data, where "0 B" and "0×" were."""
    path = write_run(tmp_path, "0001_small.json", setter(lambda d: FIT(d)["extra_info"], "peak_bytes", 0))
    table = tables.present(tables.speed(load([path])))
    row = table[(table["trainer"] == "numpy-manual-tutorial-cpu") & (table["dtype"] == "float32")].iloc[0]  # FIT
    assert (row["peak_memory"], row["× data"], row["data_bytes"]) == ("< 4 kB", "< 5.1×", "800 B")
    measured = table[table["peak_memory"] != "< 4 kB"]
    assert not measured.empty
    assert not measured["peak_memory"].str.startswith("0").any()


@pytest.mark.parametrize("field", ["x", "y", "theta"])
@pytest.mark.parametrize("kind", [complex, bool])
def test_complex_or_bool_data_are_refused_naming_the_field(field, kind, recwarn):
    """Not an imaginary part dropped with a ComplexWarning, nor bools read as 0 and 1."""
    seed = backends.make_named_problem("linear", 10, seed=0, d=2)
    values = {"x": seed.x, "y": seed.y, "params0": dict(seed.params0)}
    if field == "theta":
        values["params0"]["theta"] = values["params0"]["theta"].astype(kind)
    else:
        values[field] = values[field].astype(kind)
    name = "params0['theta']" if field == "theta" else field
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} must be numeric: got {np.dtype(kind)} values, not real"):
        backends.Problem(**values, model="linear")
    assert not recwarn.list


@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(dtypes=("float32",)))
def test_a_loss_history_beyond_memory_is_refused_before_allocating(trainer, dtype):
    config = backends.TrainConfig(epochs=10**12, dtype=dtype, workers=2 if "-dp-" in trainer.id else 1)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^epochs=1000000000000: the loss history needs 1.49e\+04 GiB, more than"):
        trainer.fit(backends.seed_problem(), config)
    assert time.perf_counter() - start < 1  # refused, not attempted


@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(dtypes=("float32",)))
@pytest.mark.parametrize(
    ("field", "x", "y", "w0", "lr"),
    [
        ("features", 1e20, 1.0, 0.5, 1e-3),  # x² of the seed's model
        ("y", 1.0, 1e39, 0.5, 1e-3),
        ("w", 1.0, 1.0, 1e39, 1e-3),
        ("lr", 1.0, 1.0, 0.5, 1e39),
    ],
)
def test_values_beyond_float32_are_refused_without_a_warning(trainer, dtype, field, x, y, w0, lr, recwarn):
    problem = backends.Problem(np.linspace(-x, x, 10), np.full(10, y), {"w": w0, "b": 0.5})
    config = backends.TrainConfig(lr=lr, dtype=dtype, workers=2 if "-dp-" in trainer.id else 1)
    with pytest.raises(ValueError, match=rf"^{field} reaches .*, beyond float32's largest value 3.4e\+38"):
        trainer.fit(problem, config)
    assert not [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize(
    ("trainer_id", "dtype"), slow_if_per_size(trainer_params(in_process_ids(), dtypes=("float32",)))
)
def test_data_at_the_edge_of_float32_diverges_quietly(trainer, dtype, recwarn):
    """x² and y just inside float32's range: the fit overflows while running, which is divergence, not a warning."""
    problem = backends.Problem(np.linspace(-1e19, 1e19, 10), np.full(10, 3e38), {"w": 0.5, "b": 0.5})
    result = trainer.fit(problem, backends.TrainConfig(epochs=5, dtype=dtype))
    assert result.diverged
    assert not [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]


# --- the report: huge numbers compact, strings from records inert -----------------------------------------------


def test_a_diverged_fit_is_printed_compactly():
    df = pd.DataFrame({"w": [1.2345678e93, 2.98928, np.inf, np.nan], "b": [-3e6, 2.0, 0, 1]})
    df.attrs["parameters"] = ["w", "b"]  # as tables.accuracy marks them
    shown = tables.present(df)
    assert list(shown["w"]) == ["1.23457e+93", "2.9892800", "inf", ""]
    assert list(shown["b"]) == ["-3e+06", "2.0000000", "0.0000000", "1.0000000"]


@pytest.mark.slow  # a whole report (~5 s)
def test_report_md_escapes_what_records_and_paths_hold(tmp_path):
    hostile = "<script>alert(1)</script>|[x](javascript:y)"

    def change(data):
        bench = FIT(data)
        bench["extra_info"].update(trainer=hostile, w=1.2345678e93, diverged=True)
        bench["name"] = f"test_fit[{hostile}]"

    good = write_run(tmp_path, "0003_hostile.json", change)
    bad = tmp_path / "<img src=x onerror=alert(1)>.json"
    bad.write_text("{")
    out = tmp_path / "out"
    proc = regbench("report", good, bad, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"regbench: skipped {bad}: not readable as JSON" in proc.stderr
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for text in (md, html):
        assert "<script>" not in text
        assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|\\[x\\](javascript:y)" in md
    assert "&lt;img src=x onerror=alert(1)&gt;.json" in md
    assert "1.23457e+93" in md
    assert "1234567800000" not in md  # not its 94 digits
