"""The run's three depths (issue 34): what each collects, what its saved run says, and the progress line's
estimate of the time left (bench.priors, regbench.estimates, bench.progress)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import problems
from bench.conftest import measures_cold_start
from bench.priors import BASE_S, DEVICE_S, first_compiles, prior_s, slow_at_the_tutorial_size
from bench.problems import MODEL, PROBLEM_BUDGET_S, PROBLEM_DTYPES, default_problems
from bench.progress import Progress
from bench.rounds import (
    MIN_ROUNDS,
    QUICK_BUDGET_S,
    QUICK_MIN_ROUNDS,
    ROUND_BUDGET_S,
    SLOW_FIT_S,
    SLOW_MIN_ROUNDS,
    least_rounds,
    measures_memory,
    slow_fits,
)
from records.model import RunFacts
from regbench import estimates
from regbench.store import machine_folder
from reports.stats import Method

ROOT = Path(__file__).resolve().parents[1]
DEPTHS = ("quick", "default", "full")


def _collect(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-B", "-m", "pytest", "bench", "--collect-only", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@functools.cache  # each depth collected once: a few seconds each
def _nodes(*args: str) -> list[str]:
    proc = _collect(*args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def _label(sizes: dict) -> str:
    return ",".join(f"{key}{value}" for key, value in sizes.items())


def _files(nodes: list[str]) -> set[str]:
    return {node.split("::")[0].removeprefix("bench/") + "::" + node.split("::")[1].split("[")[0] for node in nodes}


def test_the_default_depth_times_every_problem_at_its_default_sizes_in_both_dtypes_and_no_study():
    nodes = _nodes()
    assert _files(nodes) == {"test_fit.py::test_fit", "test_fit.py::test_floor"}
    assert {node.rsplit("-", 1)[1].rstrip("]") for node in nodes} == set(PROBLEM_DTYPES) == {"float32", "float64"}
    assert problems.usable()[0] == MODEL  # the seed's problem first, by the same path as every other
    for name in problems.usable():
        module = problems.get(name)
        for sizes in module.DEFAULT_SIZES:
            assert f"bench/test_fit.py::test_fit[{name}-{_label(sizes)}-numpy-manual-tutorial-cpu-float64]" in nodes
            assert f"bench/test_fit.py::test_floor[{name}-{_label(sizes)}-cpu-float64]" in nodes
        for sizes in problems.full_sizes(module):
            assert not [node for node in nodes if f"[{name}-{_label(sizes)}-" in node], sizes
    assert "bench/test_fit.py::test_fit[quadratic-n100,seed100-numpy-manual-tutorial-cpu-float64]" in nodes


def _trainer(node: str) -> str:
    """The trainer of a fit of the tutorial's problem (``quadratic-n100,seed100-TRAINER-DTYPE``)."""
    return node.split("[", 1)[1].rstrip("]").rsplit("-", 1)[0].removeprefix("quadratic-n100,seed100-")


def test_the_data_parallel_trainers_time_the_other_problems_under_full_only():
    def distributed(nodes):
        return [node for node in nodes if "::test_fit[" in node and "-dp-" in node and "[quadratic-" not in node]

    assert not distributed(_nodes())
    assert distributed(_nodes("--full"))
    # the seed's, with --workers (bench.problems.timing)
    assert any("::test_fit[quadratic-n100,seed100-" in node and "-dp-cpu-" in node for node in _nodes())


def test_the_full_depth_adds_every_study_and_the_full_sizes():
    nodes = _nodes("--full")
    assert _files(nodes) >= {"test_fit.py::test_fit", "test_fit.py::test_floor", "test_marginal.py::test_marginal",
                             "test_scaling.py::test_scaling"}  # fmt: skip
    for name in ("quadratic", "linear"):
        (large,) = problems.full_sizes(problems.get(name))
        assert f"bench/test_fit.py::test_fit[{name}-{_label(large)}-numpy-manual-fused-cpu-float64]" in nodes
        assert f"bench/test_fit.py::test_floor[{name}-{_label(large)}-cpu-float64]" in nodes
    # the seed's problem at its large size keeps every trainer, its eager baselines too (bench.problems.timing)
    assert "bench/test_fit.py::test_fit[quadratic-n1000000-jax-grad-eager-cpu-float64]" in nodes
    assert "bench/test_fit.py::test_fit[linear-n100000,d64-jax-grad-eager-cpu-float64]" not in nodes
    assert len(nodes) > len(_nodes())


def test_the_quick_depth_times_the_tutorial_alone_and_two_depths_are_refused():
    nodes = _nodes("--quick")
    assert nodes
    tutorial = "bench/test_fit.py::test_fit[quadratic-n100,seed100-"
    assert all(node.startswith(tutorial) and node.endswith("-float32]") for node in nodes)
    trainers = {_trainer(node) for node in nodes}
    left_out = {_trainer(node) for node in _nodes() if node.startswith(tutorial)} - trainers
    # the seconds-long fits wait for the default run: JAX's eager loop and every data-parallel group
    assert {"jax-grad-eager-cpu", "torch-autograd-dp-cpu", "jax-grad-dp-cpu"} <= left_out
    assert all(slow_at_the_tutorial_size(trainer) for trainer in left_out)
    assert {"numpy-manual-tutorial-cpu", "torch-autograd-eager-cpu", "torch-autograd-compiled-cpu"} <= trainers
    proc = _collect("--quick", "--full")
    assert proc.returncode == 4
    assert "--quick and --full ask for two depths of a run: give one" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_full_sizes_are_added_only_by_full():
    default, full = default_problems(), default_problems(full=True)
    assert set(map(str, default)) < set(map(str, full))
    assert ("linear", {"n": 10**5, "d": 64}) in full
    assert ("linear", {"n": 10**5, "d": 64}) not in default


def _config(**options):
    defaults = {"--quick": False, "--full": False, "--no-cold-start": False, "--regbench-progress-of": None,
                "--regbench-estimates": None}  # fmt: skip
    chosen = {**defaults, **options}
    return SimpleNamespace(getoption=lambda name, default=None: chosen.get(name, default))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, False),
        ({"--quick": True}, False),
        ({"--full": True}, True),
        ({"--full": True, "--no-cold-start": True}, False),
    ],
    ids=["default", "quick", "full", "full-no-cold-start"],
)
def test_only_the_full_run_measures_cold_starts(options, expected):
    assert measures_cold_start(_config(**options)) is expected


def test_a_saved_run_states_its_depth_once():
    assert RunFacts(depth="quick", quick=True).model_dump()["depth"] == "quick"
    assert "depth" not in RunFacts().model_dump()  # as files saved before depths
    with pytest.raises(ValueError, match="quick is False but depth is 'quick'"):
        RunFacts(depth="quick")


def _item(trainer_id: str | None = None, problem: str = MODEL, sizes: dict | None = None, **params):
    """A benchmark of bench/test_fit.py: a fit of ``trainer_id`` (the tutorial's by default), or a floor."""
    params = {"problem": problem, "sizes": {"n": 100, "seed": 100} if sizes is None else sizes, **params}
    if trainer_id is not None:
        params["trainer_id"] = trainer_id
    return SimpleNamespace(callspec=SimpleNamespace(params=params))


def test_priors_rank_what_costs_a_run_time():
    numpy = prior_s(_item("numpy-manual-fused-cpu"), cold_start=False)
    assert numpy == BASE_S + ROUND_BUDGET_S
    assert prior_s(_item("numpy-manual-fused-cpu"), cold_start=False, budget_s=QUICK_BUDGET_S) < numpy
    compiled = prior_s(_item("torch-autograd-compiled-cpu"), cold_start=False)
    assert compiled > prior_s(_item("jax-grad-jit-cpu"), cold_start=False) > numpy
    assert prior_s(_item("torch-autograd-compiled-cpu"), cold_start=False, first_compile=True) > compiled
    assert prior_s(_item("torch-autograd-compiled-cpu"), cold_start=True) > compiled
    # a full run measures the cold starts of the tutorial's fits alone (bench/test_fit.py): no other size waits one
    assert prior_s(_item("torch-autograd-compiled-cpu", sizes={"n": 10**6}), cold_start=True) == compiled
    assert prior_s(_item("jax-grad-eager-cpu"), cold_start=False) > numpy  # a baseline's slow fits
    quick, default, full = (prior_s(_item("jax-grad-eager-cpu"), False, fits=slow_fits(d)) for d in DEPTHS)
    assert (
        quick == default < full
    )  # 2, 2 and 7 whole fits: a first call and one round, but a full run's five and memory
    assert prior_s(_item("torch-autograd-dp-cpu"), cold_start=False) > numpy  # a group's start
    assert prior_s(_item("torch-autograd-compiled-cuda"), cold_start=False) == DEVICE_S
    assert prior_s(_item(device="cpu", dtype="float32"), cold_start=False) == BASE_S + PROBLEM_BUDGET_S  # a floor
    # another problem's fits: at most PROBLEM_BUDGET_S of rounds (bench.problems.timing)
    linear = prior_s(_item("numpy-manual-fused-cpu", "linear", {"n": 1000, "d": 16}), cold_start=False)
    assert linear == BASE_S + PROBLEM_BUDGET_S < numpy


def test_a_framework_s_first_compile_is_its_first_compiling_benchmark_on_the_cpu():
    ids = (
        "numpy-manual-fused-cpu",
        "torch-autograd-compiled-cuda",
        "torch-autograd-eager-cpu",
        "torch-autograd-compiled-cpu",
        "jax-grad-jit-cpu",
        "torch-autograd-compiled-cpu",
    )
    items = [_item(trainer_id) for trainer_id in ids]
    assert first_compiles(items) == {3, 4}


def _save(storage: Path, number: int, walls: dict[str, float | None]) -> None:
    folder = machine_folder(storage)
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = [{"test": test, "outcome": "passed", "wall_s": wall} for test, wall in walls.items()]
    (folder / f"{number:04d}_run.json").write_text(json.dumps({"regbench": {"outcomes": outcomes}}))


def test_estimates_come_from_the_storage_history_else_the_prior(tmp_path):
    _save(tmp_path, 1, {"a": 1.0, "b": 9.0})
    _save(tmp_path, 2, {"a": 3.0, "b": None})  # a file saved before wall_s: passed over for b
    _save(tmp_path, 3, {"a": 2.0})
    (machine_folder(tmp_path) / "0004_run.json").write_text("{not json")  # never fails a run
    seen = estimates.history(tmp_path)
    assert sorted(seen["a"]) == [1.0, 2.0, 3.0]
    assert seen["b"] == [9.0]
    plan = [{"nodeid": "t::a", "framework": "jax", "test": "a", "prior_s": 50.0},
            {"nodeid": "t::c", "framework": "numpy", "test": "c", "prior_s": 4.0},
            {"nodeid": "t::b", "framework": "jax", "test": "b", "prior_s": 50.0}]  # fmt: skip
    found = estimates.estimates(plan, ["numpy", "jax"], seen)
    start = estimates.PROCESS_START_S
    assert [(e["nodeid"], e["estimate_s"], e["source"]) for e in found] == [
        ("<start of the numpy process>", start, "prior"), ("t::c", 4.0, "prior"),
        ("<start of the jax process>", start, "prior"), ("t::a", 2.0, "history"), ("t::b", 9.0, "history"),
        ("<the report>", estimates.REPORT_S, "prior")]  # fmt: skip
    assert estimates.write(tmp_path / "estimates.json", plan, ["numpy", "jax"], tmp_path)
    assert json.loads((tmp_path / "estimates.json").read_text()) == found
    assert not estimates.write(tmp_path / "no-folder" / "estimates.json", plan, ["numpy"], tmp_path)


def test_the_time_left_scales_the_estimates_left_by_the_pace_so_far(tmp_path):
    path = tmp_path / "estimates.json"
    path.write_text(
        json.dumps(
            [
                {"nodeid": "<start of the numpy process>", "estimate_s": 4.0},
                {"nodeid": "numpy::a", "estimate_s": 6.0},
                {"nodeid": "<start of the torch process>", "estimate_s": 4.0},
                {"nodeid": "torch::b", "estimate_s": 6.0},
                {"nodeid": "torch::c", "estimate_s": 20.0},
                {"nodeid": "<start of the jax process>", "estimate_s": 4.0},
                {"nodeid": "jax::d", "estimate_s": 26.0},
                {"nodeid": "<the report>", "estimate_s": 10.0},
            ]
        )
    )
    progress = Progress(_config(**{"--regbench-progress-of": "1,4,0", "--regbench-estimates": str(path)}))
    progress.items = {"torch::b": None, "torch::c": None}  # this process's benchmarks
    progress.done = {"torch::b"}
    # Up to b, 20 s were expected and 40 s taken: the machine runs at half the estimates' pace, which scales those
    # left by its square root (one slow benchmark must not double every later estimate). Left: c, the jax
    # process's start, d and the report.
    assert progress.time_left(40.0, 2, 2) == pytest.approx(2**0.5 * (20.0 + 4.0 + 26.0 + 10.0))
    plain = Progress(_config(**{"--regbench-progress-of": "1,4,0"}))
    plain.items = progress.items
    assert plain.time_left(40.0, 2, 2) == pytest.approx(40.0)  # no estimates: the mean so far × those left


def test_the_default_run_gives_a_slow_fit_fewer_rounds_than_compare_judges_on():
    assert least_rounds("full", 10.0) == MIN_ROUNDS
    assert least_rounds("default", 10.0) == SLOW_MIN_ROUNDS < MIN_ROUNDS
    assert least_rounds("default", SLOW_FIT_S / 2) == MIN_ROUNDS
    assert least_rounds("quick", 0.001) == QUICK_MIN_ROUNDS
    assert [slow_fits(depth) for depth in DEPTHS] == [2, 1 + SLOW_MIN_ROUNDS, 2 + MIN_ROUNDS]


def test_the_default_run_measures_no_slow_fits_memory_and_the_full_run_every_fits():
    assert not measures_memory("quick", 0.001)
    assert measures_memory("default", SLOW_FIT_S / 2)
    assert not measures_memory("default", SLOW_FIT_S)
    assert measures_memory("default", None)  # rounds given: the warm call was not timed apart
    assert measures_memory("full", 10.0)
    assert Method().min_rounds == MIN_ROUNDS  # what compare judges on: a full run's slow fits are judged


def test_a_record_says_what_its_size_is_to_the_runs():
    """The size role (problems.size_role) that targets select by, instead of restating sizes."""
    from bench.problems import named, sized, tutorial

    assert tutorial().size == "default"
    assert tutorial().record == named("quadratic", n=100, seed=100).record  # the seed's problem by the one path
    assert (sized(10**6).size, sized(1000).size) == ("full", "sweep")  # the large problem; a sweep size
    # the sweep's 100 points (seed 0) are not the tutorial's (seed 100): they are not its default size
    assert (sized(100).size, named("quadratic", 100).size) == ("sweep", "sweep")
    linear = problems.get("linear")
    assert named("linear", **linear.DEFAULT_SIZES[0]).size == "default"
    assert named("linear", **problems.full_sizes(linear)[0]).size == "full"
    assert problems.size_role(linear, 10**6, d=1) == "sweep"
    assert problems.size_role(linear, 1000) == "default"  # d at its PARAMS's default, 16
