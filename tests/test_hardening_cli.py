"""The second hardening battery: the suite's own pytest options, signals, commit failures, odd storages.

Same style as tests/test_hardening.py: CLI cases run ``python -m regbench`` in a subprocess and assert the exit
status, one line on stderr, no traceback, and that a storage holds nothing new.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from regbench import cli, store
from regbench import run as supervisor
from reports import load as load_module
from reports.compare import relative_change
from tests.fake_pytest import RUN, FakePytest
from tests.test_hardening import FIT, ROOT, TINY, one_line, regbench, write_run
from tests.test_reports import MACHINE, NEW, STORAGE, fingerprint

# --- 1. the suite's own pytest options: a usage error before any benchmark runs ---------------------------------

BAD_SUITE_OPTIONS = [
    ("--sweep-sizes=0", "positive integers"),
    ("--sweep-sizes=-5,abc", "positive integers"),
    ("--sweep-sizes=,", "positive integers"),
    ("--marginal-n=-3", "positive integer"),
    ("--regbench-rounds=0", "positive integer"),
    ("--workers=0", "positive integer"),
    ("--scaling-sizes=x", "positive integers"),
    ("--scaling-workers=0,2", "positive integers"),
    ("--scaling-dtypes=float16", "float32, float64"),
    # issue 36: a budget of nan ran tracebacks, -1 was taken; 1000 workers failed every data-parallel benchmark
    *(pytest.param(option, why, marks=pytest.mark.slow) for option, why in [
        ("--regbench-budget=nan", "a finite number of seconds > 0"),
        ("--regbench-budget=-1", "a finite number of seconds > 0"),
        ("--workers=1000", "per core on the"),
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("option", "why"), BAD_SUITE_OPTIONS)
def test_a_bad_suite_option_is_one_line_before_any_benchmark(tmp_path, option, why):
    storage, out = tmp_path / "storage", tmp_path / "out"
    proc = regbench("run", "--storage", storage, "--out", out, "--", *TINY, option, timeout=120)
    name, value = option.split("=", 1)
    one_line(proc, 2, "regbench: error: pytest: argument", name, why, repr(value), "nothing saved")
    assert "passed" not in proc.stdout  # pytest stopped at its command line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no storage, no report folder, no staging


def test_good_suite_options_parametrize_the_benchmarks():
    """The parsed values (lists, not strings) reach the parameters: sizes as given, defaults parsed too."""
    cmd = [sys.executable, "-B", "-m", "pytest", "bench", "--collect-only", "-q", "-p", "no:cacheprovider", "--full",
           "--sweep", "--sweep-sizes=100, 1000", "--marginal-n=7", "--scaling", "--scaling-sizes=50",
           "--scaling-workers=1,3", "--scaling-dtypes=float64", "-k", "numpy-manual-fused or scaling"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ids = proc.stdout
    assert "test_fit[quadratic-n100-numpy" in ids  # the sweep's 100 points, seed 0
    assert "test_fit[quadratic-n1000-numpy" in ids
    assert "test_fit[quadratic-n10000-" not in ids  # the sweep's other sizes replaced
    assert "test_fit[quadratic-n1000000-numpy" in ids  # the seed's FULL_SIZES: the full run's, whatever the sweep
    assert "test_marginal[n7-numpy" in ids
    assert "test_scaling[n50-w1-float64-" in ids
    assert "test_scaling[n50-w3-float64-" in ids
    assert "float32-" not in ids.split("test_scaling", 1)[1]


# --- 2. records that pass the schema but could fool a reader ----------------------------------------------------


def diverge(data):
    """The first fit diverged: NaN weights and loss, as a trainer saves them."""
    info = FIT(data)["extra_info"]
    info.update(w=float("nan"), b=float("nan"), final_loss=float("nan"), diverged=True)
    info["losses"] = [float("nan")] * len(info["losses"])


def test_a_diverged_benchmark_compared_with_itself_has_not_changed(tmp_path):
    path = write_run(tmp_path, "0001_diverged.json", diverge)
    proc = regbench("compare", path, path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "accuracy change(s)" not in proc.stdout
    assert "ok: no significant slow-down" in proc.stdout
    assert relative_change(float("nan"), float("nan")) == 0.0
    assert relative_change(float("nan"), 1.0) == float("inf")  # NaN against a number has changed
    assert relative_change(1.0, float("nan")) == float("inf")


def test_a_benchmark_that_starts_diverging_is_still_an_accuracy_change(tmp_path):
    good, bad = write_run(tmp_path, "0001_good.json"), write_run(tmp_path, "0002_diverged.json", diverge)
    proc = regbench("compare", good, bad)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "1 accuracy change(s)" in proc.stdout


def rename_trainers(data):
    for bench in data["benchmarks"]:
        if not bench["name"].startswith("test_floor["):
            bench["extra_info"]["lr"] *= 2  # another setup everywhere: nothing pairs with the fixture run


@pytest.mark.parametrize("allow", [[], ["--allow-missing"]])
def test_a_comparison_of_nothing_fails_whatever_is_allowed_missing(tmp_path, allow):
    base, new = write_run(tmp_path, "0001_base.json"), write_run(tmp_path, "0002_other.json", rename_trainers)
    before = fingerprint(tmp_path)
    proc = regbench("compare", base, new, *allow)
    one_line(proc, 2, f"BASE {base} and NEW {new} have no benchmark in common", "nothing to compare",
             "(not comparable)")  # fmt: skip
    assert proc.stdout == ""
    assert fingerprint(tmp_path) == before


# --- 3. signals other than Ctrl-C ---------------------------------------------------------------------------------

#: 5000 rounds of the tutorial loop (~40 s): always still running when the signal comes.
SLOW = ["-k", "seed100 and numpy-manual-tutorial-cpu and float64", "-m", "not sweep", "--no-cold-start",
        "--regbench-rounds=5000"]  # fmt: skip


def processes_with(marker: str) -> list[int]:
    """The pids of the processes whose command line holds ``marker`` (a path unique to one test)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return pids


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    storage = tmp_path / "storage"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-B", "-m", "regbench", "run", "--storage", str(storage), "--out", str(tmp_path / "out"),
           "--", *SLOW]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("running:")
    deadline = time.monotonic() + 60
    while not processes_with(str(storage)) and time.monotonic() < deadline:  # the pytest child has started
        time.sleep(0.2)
    time.sleep(3)  # pytest is importing, collecting or timing by now
    return proc, storage


@pytest.mark.slow  # a real run started and stopped
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_stops_the_run_its_child_and_its_staging(tmp_path, signum):
    proc, storage = start_slow_run(tmp_path)
    start = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - start < 60  # stopped, not run to its end
    assert proc.returncode == 128 + signum, err
    assert err.strip() == f"regbench: stopped by {signal.Signals(signum).name}: nothing saved"
    assert processes_with(str(storage)) == []  # pytest and anything it started are gone
    assert not storage.exists()  # no staging folder, and the storage it created removed
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a real run started, killed, and a second run
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc")
def test_a_killed_run_takes_its_child_along_and_the_next_run_removes_its_staging(tmp_path):
    proc, storage = start_slow_run(tmp_path)
    assert processes_with(str(storage))
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while processes_with(str(storage)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(str(storage)) == []  # the kernel killed pytest with its parent
    [stale] = [p for p in storage.iterdir() if p.name.startswith(".staging-")]
    # The next run (here one refused at pytest's command line: quick) removes it, the owner being gone.
    later = regbench("run", "--storage", storage, "--out", tmp_path / "out", "--", "--regbench-rounds=0")
    one_line(later, 2, "--regbench-rounds")
    assert f"removed {stale}: left by a run that is gone" in later.stdout
    # Only the frameworks' caches the killed run made are left (regbench.caches): no staging, no run.
    assert not storage.exists() or [p.name for p in storage.iterdir()] in ([], [".cache"])


def test_a_live_runs_staging_is_left_and_an_unknown_one_reported(tmp_path):
    live = store.staging_folder(tmp_path)  # this process's own: alive
    parents = tmp_path / f".staging-{os.getppid()}@{store._host()}-abc123"
    other_host = tmp_path / ".staging-1@elsewhere-abc123"
    older = tmp_path / ".staging-k2j3h4g5"  # an older regbench's name: no owner recorded
    for folder in (parents, other_host, older):
        folder.mkdir()
    removed, notes = store.clean_stale(tmp_path)
    assert removed == []
    assert sorted(note.split(" ")[0] for note in notes) == sorted(map(str, [other_host, older]))
    assert all(p.exists() for p in (live, parents, other_host, older))
    proc = regbench("run", "--storage", tmp_path, "--out", tmp_path / "out", "--", "--regbench-rounds=0")
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2
    assert sorted(line.split(" ")[2] for line in err[:-1]) == sorted(map(str, [other_host, older]))
    assert all("may be left by a run that is gone" in line for line in err[:-1])
    assert "--regbench-rounds" in err[-1]


# --- 4. a finished run never lost at its commit -------------------------------------------------------------------


@pytest.mark.parametrize("case", ["machine folder a file", "lock file a folder", "name too long in bytes"])
def test_what_the_commit_needs_is_checked_before_any_benchmark(tmp_path, case):
    storage = tmp_path / "storage"
    earlier = write_run(storage, "0001_before.json")
    folder = store.machine_folder(storage)
    name = ["--name", "日" * 90]  # 100 characters allowed, but 270 bytes: more than a file name's 255
    if case == "machine folder a file":
        shutil.rmtree(folder)
        earlier = storage / "notes.txt"  # what the storage held before: unchanged
        earlier.write_text("mine")
        folder.write_text("not a folder")
        name, why = [], [str(folder), "is not a folder"]
    elif case == "lock file a folder":
        (folder / store.LOCK).mkdir(parents=True)
        name, why = [], [str(folder / store.LOCK), "not a writable file"]
    else:
        why = ["--name", "bytes, more than the 255"]
    before = fingerprint(storage)
    proc = regbench("run", *name, "--storage", storage, "--out", tmp_path / "out", "--", *TINY)
    one_line(proc, 2, f"--storage {storage}" if case != "name too long in bytes" else "--name", *why)
    assert "running:" not in proc.stdout  # no benchmark started
    assert fingerprint(storage) == before
    assert earlier.exists()
    assert not [p for p in storage.iterdir() if p.name.startswith(".staging-")]


def test_a_commit_that_fails_keeps_the_staged_run_and_says_where(tmp_path, monkeypatch, capsys):
    storage = tmp_path / "storage"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(supervisor.subprocess, "Popen", FakePytest)
    monkeypatch.setattr(store.os, "link", full)
    assert cli.main(["run", "--storage", str(storage), "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert "no space left on device" in err
    assert "benchmark run failed" not in err
    kept = Path(err.strip().split("it is kept in ", 1)[1])
    assert json.loads(kept.read_text())["benchmarks"] == json.loads(RUN.read_text())["benchmarks"]
    assert kept.parent.parent.parent == storage  # storage/.staging-…/<machine>/0001_run.json
    assert "saved:" not in out
    assert not (tmp_path / "out").exists()
    monkeypatch.undo()
    # Its owner gone (as if this process had ended), a later run neither removes it (it holds a run) nor hides it.
    gone = subprocess.Popen(["true"])
    gone.wait()
    staging = kept.parent.parent.rename(storage / kept.parent.parent.name.replace(f"-{os.getpid()}@", f"-{gone.pid}@"))
    removed, notes = store.clean_stale(storage)
    assert removed == []
    assert notes == [f"{staging} holds a run that was never added to the storage: {staging / MACHINE.name / kept.name}"]


def test_a_run_that_fails_on_a_full_disk_says_no_space_left(tmp_path, monkeypatch, capsys):
    class FailsOnAFullDisk(FakePytest):
        status = 1

    real = os.statvfs

    def statvfs(path):
        st = real(path)
        return os.statvfs_result((*st[:4], 0, *st[5:]))  # f_bavail: no block left

    monkeypatch.setattr(supervisor.subprocess, "Popen", FailsOnAFullDisk)
    monkeypatch.setattr(store.os, "statvfs", statvfs)
    assert cli.main(["run", "--storage", str(tmp_path / "storage"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no space left on the device of --storage" in err
    assert "benchmark run failed" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- 5. OS and encoding errors, and what a storage's top level may hold -------------------------------------------


def test_a_machine_folder_that_cannot_be_listed_is_named_and_the_others_reported(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "storage", "0001_good.json")
    hidden = write_run(tmp_path / "storage" / "other", "0001_hidden.json").parent  # storage/other/<machine>/
    locked = tmp_path / "storage" / "locked"
    shutil.move(hidden, locked)
    listdir = os.listdir

    def refuse(path):  # as chmod 000 would (root reads any folder, so it is stood in for)
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return listdir(path)

    monkeypatch.setattr(load_module.os, "listdir", refuse)
    catalogue = load_module.read([tmp_path / "storage"])
    assert [s.path.name for s in catalogue.all] == ["0001_good.json"]
    assert catalogue.errors == [f"{locked}: cannot be listed (Permission denied); its runs are left out"]
    assert cli.main(["history", str(tmp_path / "storage")]) == 0
    err = capsys.readouterr().err
    assert err == f"regbench: skipped {locked}: cannot be listed (Permission denied); its runs are left out\n"
    # A file in it, given directly, is read: naming it needs no listing.
    assert [s.path for s in load_module.read([locked / "0001_hidden.json"]).all] == [locked / "0001_hidden.json"]


def test_a_path_longer_than_the_file_system_allows_is_one_line(tmp_path):
    path = tmp_path / ("a" * 300)
    one_line(regbench("report", path, "--out", tmp_path / "out"), 2, "cannot be read (File name too long)")
    one_line(regbench("compare", NEW, path / "0001_x.json"), 2)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a whole report in a fresh process
def test_a_run_file_whose_name_is_not_utf8_is_reported_escaped(tmp_path):
    storage = tmp_path / "storage"
    good = write_run(storage, "0001_good.json")
    odd = good.parent / os.fsdecode(b"0002_caf\xe9.json")  # Latin-1 bytes: not UTF-8
    shutil.copy(good, odd)
    before = fingerprint(storage)
    proc = regbench("report", storage, "--all", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    csv = (tmp_path / "out" / "results.csv").read_bytes().decode("utf-8")  # the whole file is UTF-8
    assert set(pd.read_csv(io.StringIO(csv))["run"]) == {"0001_good", "0002_caf\\xe9"}
    proc = regbench("history", storage)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0002_caf\\xe9" in proc.stdout
    assert fingerprint(storage) == before


@pytest.mark.slow  # fresh processes with their output closed or full
def test_an_output_that_cannot_be_written_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def shell(redirect: str, *args) -> subprocess.CompletedProcess:
        cmd = f'exec "{sys.executable}" -B -m regbench {" ".join(map(str, args))} {redirect}'
        return subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=300)

    one_line(shell(">/dev/full", "list"), 1, "regbench: error: the output could not be written (no space left")
    one_line(shell(">/dev/full", "history", STORAGE), 1, "no space left on device")
    one_line(shell(">&-", "list"), 2, "standard output is closed")


@pytest.mark.parametrize("stray", ["other.json", "notes.txt", "0001_loose.json"])
def test_stray_files_at_a_storages_top_level_change_nothing(tmp_path, stray):
    storage = tmp_path / "storage"
    write_run(storage, "0001_a.json")
    write_run(storage, "0002_b.json")
    expected = [s.path for s in load_module.read([storage]).all]
    (storage / stray).write_text('{"tool": "not regbench"}')
    catalogue = load_module.read([storage])
    assert [s.path for s in catalogue.all] == expected  # the machine folder's runs, all still found
    proc = regbench("history", storage)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0002_b" in proc.stdout


def test_a_signal_ignored_at_the_start_stays_ignored():
    """``nohup regbench run`` must survive a hang-up: SIGHUP ignored stays ignored, SIGTERM is handled."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        term = signal.getsignal(signal.SIGTERM)
        with supervisor._stopping_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is supervisor._raise_stopped
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGHUP, before)


@pytest.mark.parametrize("run", ["²", "*", "n*"])
def test_a_run_is_named_by_digits_or_its_name_never_by_a_pattern(run):
    """``²`` is a digit to str.isdigit() but no run number; ``*`` matched every run (or several, an error)."""
    proc = regbench("targets", run, "--storage", STORAGE)
    one_line(proc, 2, f"regbench: error: {run}: no such file, and no saved run of that number or name in {STORAGE}")


@pytest.mark.parametrize("argv", [["compare", "1", "2", "--storage", str(STORAGE)], ["history", str(STORAGE)]])
def test_a_terminal_that_cannot_show_arrows_gets_them_escaped(argv, monkeypatch):
    """``PYTHONIOENCODING=ascii``: → and – written as \\u2192 and \\u2013, not a UnicodeEncodeError."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    status = cli.main(argv)
    sys.stdout.flush()
    assert status in (0, 1)  # compare's verdict on the fixtures is a slow-down: 1
    text = raw.getvalue().decode("ascii")
    assert "\\u2192" in text or "\\u2013" in text


def test_compare_names_a_non_utf8_file_on_a_strict_terminal(tmp_path):
    path = write_run(tmp_path, "0001_good.json")
    odd = path.with_name(os.fsdecode(b"0002_caf\xe9.json"))
    shutil.copy(path, odd)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}  # strict: no surrogates let through
    proc = subprocess.run([sys.executable, "-B", "-m", "regbench", "compare", odd, odd], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0002_caf\\xe9.json → NEW" in proc.stdout
