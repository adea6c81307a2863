"""Issue 36, class 1: a plugin that crashes its process (``os.abort()``, ``os._exit(3)``, a segfault), in its own
framework's process or in NumPy's, or that is uninstalled while the run is under way, costs only its own
benchmarks: each is a failed outcome whose line names it and the death, every other process's figures are saved
(those its process finished before the crash too), the rest of the crashed process runs again, exit 1.

The plugins are real installed distributions (tests.plugins) and the crashes real: a process killed by SIGABRT or
SIGSEGV, or ended by ``os._exit``, under a real ``regbench run``.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from regbench import partial
from tests.plugins import TOY_BACKEND, write_distribution
from tests.test_hardening import ROOT, one_line, regbench

#: A run of the tutorial's fits in both dtypes, one timed round each, of the fused NumPy loop and the toys.
SELECTION = ["-k", "test_fit and seed100 and (numpy-manual-fused-cpu or toy)", "-m", "not sweep", "--no-cold-start",
             "--regbench-rounds=1"]  # fmt: skip


def install(site, prefix: str, framework: str, crash: str = "", float32_only: bool = False) -> str:
    """Distribution ``regbench-PREFIX``: trainer ``PREFIX-manual-loop-cpu`` of ``framework`` ("": a process of its
    own), whose run() first executes ``crash`` (in float32 alone with ``float32_only``). Returns the trainer id."""
    framework = framework or f"{prefix}_backend"
    backend = TOY_BACKEND
    if crash:
        when = "self.x2.dtype == np.float32" if float32_only else "True"
        backend += (f"\nimport ctypes, os\n_run = _Fit.run\n\ndef run(self):\n    if {when}:\n        {crash}\n"
                    "    return _run(self)\n\n_Fit.run = run\n")  # fmt: skip
    spec = (f'from backends import TrainerSpec\nTRAINERS = (TrainerSpec("{prefix}", "manual", "loop", "cpu", '
            f'"{prefix}_backend", framework="{framework}", problems=("quadratic",)),)\n')  # fmt: skip
    modules = {f"{prefix}_specs.py": spec, f"{prefix}_backend.py": backend}
    write_distribution(site, f"regbench-{prefix}", {"regbench.trainers": {prefix: f"{prefix}_specs:TRAINERS"}}, modules)
    return f"{prefix}-manual-loop-cpu"


def saved_run(storage) -> dict:
    (path,) = storage.glob("*/0001_*.json")
    return json.loads(path.read_text())


def outcome_of(run: dict, test: str) -> dict:
    return next(o for o in run["regbench"]["outcomes"] if o["test"] == test)


@pytest.mark.slow  # a real run of five processes, four of them crashing (~40 s)
def test_a_crashing_plugin_costs_only_its_own_benchmark(site, tmp_path):
    segv = install(site, "toysegv", "numpy", "ctypes.string_at(0)", float32_only=True)  # NumPy's process
    abort = install(site, "toyabort", "", "os.abort()")  # a process of its own
    exits = install(site, "toyexit", "", "os._exit(3)", float32_only=True)
    zero = install(site, "toyzero", "numpy", "os._exit(0)", float32_only=True)  # a status of 0, and no results
    storage, out = tmp_path / "storage", tmp_path / "out"
    proc = regbench("run", "--storage", storage, "--out", out, "--", *SELECTION,
                    pythonpath=f"{site}{os.pathsep}{ROOT}", timeout=600)  # fmt: skip
    line = one_line(proc, 1, "regbench: benchmarks failed in the numpy, toyabort_backend, toyexit_backend processes")
    assert str(storage) in line  # the others are saved
    died = {segv: "numpy process was killed by SIGSEGV", abort: "toyabort_backend process was killed by SIGABRT",
            exits: "toyexit_backend process was ended with exit status 3",
            zero: "numpy process was ended with exit status 0"}  # fmt: skip
    for trainer, why in died.items():
        assert f"test_fit[quadratic-n100,seed100-{trainer}-float32]: FAILED (its {why} while it ran)" in proc.stdout
    assert "Fatal Python error" not in proc.stdout + proc.stderr  # the fault dump is not the user's line
    run = saved_run(storage)
    timed = {b["name"] for b in run["benchmarks"]}
    # NumPy's figures before the crash, and after it (its process ran again without the crashed benchmark).
    assert {
        "test_fit[quadratic-n100,seed100-numpy-manual-fused-cpu-float32]",
        "test_fit[quadratic-n100,seed100-numpy-manual-fused-cpu-float64]",
    } <= timed
    assert {f"test_fit[quadratic-n100,seed100-{trainer}-float64]" for trainer in (segv, exits, zero)} <= timed
    assert not timed & {f"test_fit[quadratic-n100,seed100-{t}-float32]" for t in (segv, abort, exits, zero)}
    for trainer, why in died.items():
        outcome = outcome_of(run, f"test_fit[quadratic-n100,seed100-{trainer}-float32]")
        assert (outcome["outcome"], outcome["trainer"], outcome["dtype"]) == ("failed", trainer, "float32")
        assert why in outcome["reason"]
    assert (
        outcome_of(run, f"test_fit[quadratic-n100,seed100-{abort}-float64]")["outcome"] == "failed"
    )  # it aborts in both dtypes
    assert outcome_of(run, f"test_fit[quadratic-n100,seed100-{segv}-float64]")["outcome"] == "passed"
    assert run["regbench"]["processes"] == ["numpy", "toyabort_backend", "toyexit_backend"]
    assert run["machine_info"]["regbench"]["versions"]["numpy"]  # the facts of a process that died kept too
    report = (out / "report.md").read_text()  # the report lists them
    assert f"- failed: its toyabort_backend process was killed by SIGABRT while it ran: {abort}\n" in report
    assert f"- failed: its numpy process was killed by SIGSEGV while it ran: {segv} (float32)\n" in report
    assert not list(storage.glob(".staging-*"))


@pytest.mark.slow  # a real run of two processes (~15 s)
def test_a_plugin_uninstalled_during_the_run_fails_its_benchmarks_and_the_others_are_saved(site, tmp_path):
    gone = install(site, "toygone", "")  # a process of its own, which runs after NumPy's
    # A NumPy-process trainer that uninstalls the other plugin (its dist-info and modules) while the run is on.
    remove = ("import shutil; [shutil.rmtree(p) if p.is_dir() else p.unlink() for p in "
              f"__import__('pathlib').Path({str(site)!r}).glob('toygone*')]")  # fmt: skip
    install(site, "toyremover", "numpy", remove)
    storage = tmp_path / "storage"
    proc = regbench("run", "--storage", storage, "--out", tmp_path / "out", "--", *SELECTION,
                    pythonpath=f"{site}{os.pathsep}{ROOT}", timeout=600)  # fmt: skip
    one_line(proc, 1, "regbench: benchmarks failed in the toygone_backend process", str(storage))
    for dtype in ("float32", "float64"):
        assert f"test_fit[quadratic-n100,seed100-{gone}-{dtype}]: FAILED (planned, but its toygone_backend process " \
               "no longer found it" in proc.stdout  # fmt: skip
    run = saved_run(storage)
    assert "test_fit[quadratic-n100,seed100-numpy-manual-fused-cpu-float64]" in {b["name"] for b in run["benchmarks"]}
    assert outcome_of(run, f"test_fit[quadratic-n100,seed100-{gone}-float32]")["outcome"] == "failed"


def test_a_partial_file_cut_short_by_a_death_gives_what_finished_and_where_it_died(tmp_path):
    """regbench.partial reads bench.partial's lines: the finished benchmark is a part of the run, the one started
    after it is the one the process died in, and a line the death cut short is passed over."""
    first, second = "bench/test_fit.py::test_fit[a-float32]", "bench/test_fit.py::test_fit[b-float32]"
    lines = [{"started": first}, {"benchmark": {"name": "test_fit[a-float32]"}},
             {"outcome": {"test": "test_fit[a-float32]", "outcome": "passed"}},
             {"head": {"machine_info": {"node": "x"}, "commit_info": {}, "datetime": "now", "version": "5"}},
             {"facts": {"quick": True}}, {"started": second}]  # fmt: skip
    path = tmp_path / "partial.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"benchmark": {"name": "test_f')
    found = partial.read(path)
    assert (found.started, found.died_in) == ([first, second], second)
    assert found.part["benchmarks"] == [{"name": "test_fit[a-float32]"}]
    assert (found.part["machine_info"], found.part["regbench"]) == ({"node": "x"}, {"quick": True})
    mine = [{"nodeid": first, "trainer": "a", "dtype": "float32"},
            {"nodeid": second, "trainer": "b", "dtype": "float32"},
            {"nodeid": "bench/test_fit.py::test_fit[c-float32]"}]  # fmt: skip
    found, left = partial.salvage(path, "numpy", -signal.SIGSEGV, mine, mine)
    assert left == mine[2:]  # the rest runs again
    (lost,) = found.lost
    assert {"test": "test_fit[b-float32]", "outcome": "failed", "trainer": "b", "dtype": "float32",
            "reason": "its numpy process was killed by SIGSEGV while it ran"}.items() <= lost.items()  # fmt: skip
    assert lost in found.outcomes
    assert partial.death(3) == "ended with exit status 3"
