"""pytest configuration of the benchmarks: options, markers, the run's depth, and the machine record.

Rules: a run has one of three depths (``depth``), recorded in its saved file (RunFacts.depth). The default times
every problem at its ``DEFAULT_SIZES`` (bench/test_fit.py: the tutorial's problem first, every problem with its
bandwidth floor) in float32 and float64, with first calls and agreement: the answer, in a few minutes. ``--full``
adds every study (benchmarks marked ``full``): the cold starts, the large problem (n = 10⁶) and its floor, every
problem's ``FULL_SIZES``, the marginal-cost study at n = 10⁷ (``--marginal-n``) and the data-parallel scaling study.
``--quick`` times the tutorial's problem alone in QUICK_DTYPES (the rest is deselected), without the trainers whose
every fit takes a second or more there (bench.priors.slow_at_the_tutorial_size: the data-parallel groups, JAX's
eager loop), with QUICK_BUDGET_S of rounds per benchmark and no peak memory (bench.harness). ``--sweep`` times every
problem at its ``SWEEP_SIZES`` too (the seed's at every n of ``--sweep-sizes`` where given, the others' of those n),
at any depth but the quick one. The data-parallel options live in bench/dp_options.py. Every round's time is saved.
The environment (bench.environment) is written once per saved file through pytest-benchmark's machine-info hook; the
outcome of every selected benchmark and the small problems' data through its JSON hook (bench.outcomes), and with
``--regbench-partial`` each benchmark as it ends (bench.partial: what a process that dies keeps).
``--regbench-progress`` prints one line per finished benchmark (bench.progress). Each benchmark runs within a time
limit (``--regbench-time-limit``, else $REGBENCH_TIME_LIMIT_S, else 600 s) and as plugin code (records.sources): a
hang past it, a thread left running, sys.exit() or a KeyboardInterrupt no Ctrl-C sent fails that benchmark alone.
"""

from __future__ import annotations

import contextlib

import pytest

from bench import dp_options
from bench.environment import machine_record
from bench.isolation import Isolation
from bench.option_types import positive_int, positive_ints, positive_seconds
from bench.outcomes import OutcomeRecorder
from bench.params import of_item, require_trainer
from bench.partial import PartialWriter
from bench.priors import slow_at_the_tutorial_size
from bench.problems import LARGE_N, MARGINAL_N, is_tutorial, size_role
from bench.progress import Progress
from bench.rounds import QUICK_BUDGET_S, QUICK_DTYPES, ROUND_BUDGET_S, slow_fits
from records.sources import (
    TIME_LIMIT_ENV,
    TIME_LIMIT_S,
    leave_stuck_threads,
    plugin_code,
    sigint_watched,
    time_limit,
    within,
)


def pytest_addoption(parser):
    group = parser.getgroup("regbench")
    group.addoption(
        "--sweep",
        action="store_true",
        help="time every problem at its SWEEP_SIZES too (the seed's: n = 10² … 10⁷ of seed 0, the tutorial's beside)",
    )
    group.addoption(
        "--sweep-sizes",
        type=positive_ints,
        default=None,  # bench.problems.default_problems
        help="comma-separated n of the sweep: the seed's problem at each, the others at those of their SWEEP_SIZES "
        "[every problem's SWEEP_SIZES]",
    )
    group.addoption(
        "--marginal-n", type=positive_int, default=MARGINAL_N, help=f"size of the marginal-cost study [{MARGINAL_N}]"
    )
    group.addoption(
        "--regbench-rounds", type=positive_int, default=None, help="timed rounds per benchmark (default: a time budget)"
    )
    group.addoption(
        "--regbench-budget",
        type=positive_seconds,
        default=None,
        help=f"seconds of timed rounds per benchmark [{ROUND_BUDGET_S}; {QUICK_BUDGET_S} with --quick]",
    )
    group.addoption(
        "--quick",
        action="store_true",
        help=f"the quick run: the tutorial's problem only, in {', '.join(QUICK_DTYPES)}, without the data-parallel "
        f"trainers and JAX's eager loop, {QUICK_BUDGET_S} s of rounds each, no cold start or peak memory; its saved "
        "run is marked quick",
    )
    group.addoption(
        "--full",
        action="store_true",
        help=f"the full run: the default run and every study (cold starts, n={LARGE_N} and its bandwidth floor, every "
        "problem's FULL_SIZES, the marginal-cost study, the data-parallel scaling study); saved as a full run",
    )
    group.addoption(
        "--regbench-time-limit",
        type=positive_seconds,
        default=None,
        help=f"seconds one benchmark may take, past which it fails (the others run on) [${TIME_LIMIT_ENV}, else "
        f"{TIME_LIMIT_S:g}]",
    )
    group.addoption("--regbench-progress", action="store_true", help="one line per finished benchmark, with an ETA")
    group.addoption(
        "--no-cold-start",
        action="store_true",
        help="with --full: skip the cold-start measurement (a fresh process per compiled trainer and dtype, ~45 s on "
        "2 cores)",
    )
    group.addoption("--regbench-outcomes", default=None, help="write every selected benchmark's outcome there (JSON)")
    group.addoption(
        "--regbench-partial",
        default=None,
        help="append each benchmark there as it ends (JSON lines: what a process that dies keeps; bench.partial)",
    )
    group.addoption(
        "--regbench-framework",
        default=None,
        help="run only this framework's benchmarks (regbench run starts one process per framework: bench.isolation)",
    )
    group.addoption("--regbench-plan", default=None, help="write the selected benchmarks and their frameworks there")
    group.addoption(
        "--regbench-progress-of",
        default=None,
        help="DONE,TOTAL,START: this process's benchmarks follow DONE others of a run of TOTAL started at START (Unix "
        "time), for the progress lines",
    )
    group.addoption("--regbench-estimates", default=None,
                    help="a JSON list of the run's benchmarks (nodeid, framework, estimate_s) in the order they run, "
                    "for the progress lines' time left (regbench.estimates)")  # fmt: skip
    dp_options.add_options(parser)  # --workers and the scaling study (bench.dp_options)


def pytest_configure(config):
    # Registered here as well as in pyproject.toml, so that the benchmarks also run from an installed copy.
    config.addinivalue_line("markers", "sweep: the larger problems, the bandwidth floor and the marginal-cost study")
    config.addinivalue_line("markers", "gpu: needs a CUDA or JAX GPU device")
    config.addinivalue_line("markers", "framework(name): the framework of a benchmark that names no trainer")
    config.addinivalue_line("markers", "full: a study of the full run, deselected without --full (or --sweep for the "
                            "sweep's)")  # fmt: skip
    if config.getoption("--quick") and config.getoption("--full"):
        raise pytest.UsageError("--quick and --full ask for two depths of a run: give one")
    # Every round's time is saved (stats["data"]): `regbench compare` tests on them. pytest-benchmark reads
    # the option in its own pytest_configure, which runs last, so setting it here is as if it were given.
    config.option.benchmark_save_data = True
    watch = contextlib.ExitStack()  # a trainer's own KeyboardInterrupt fails its benchmark; a Ctrl-C stops the run
    watch.enter_context(sigint_watched())
    config.add_cleanup(watch.close)
    try:
        config.stash[_TIME_LIMIT] = config.getoption("--regbench-time-limit") or time_limit()
    except ValueError as exc:  # a bad $REGBENCH_TIME_LIMIT_S
        raise pytest.UsageError(str(exc)) from None
    recorder = OutcomeRecorder(config.getoption("--regbench-outcomes"), depth(config))
    config.pluginmanager.register(recorder, "regbench-outcomes")
    if partial := config.getoption("--regbench-partial"):
        config.pluginmanager.register(PartialWriter(partial, config, recorder), "regbench-partial")
    plan, framework = config.getoption("--regbench-plan"), config.getoption("--regbench-framework")
    if plan or framework:
        isolation = Isolation(plan, framework, measures_cold_start(config), round_budget(config),
                              slow_fits(depth(config)))  # fmt: skip
        config.pluginmanager.register(isolation, "regbench-isolation")
    if config.getoption("--regbench-progress"):
        config.pluginmanager.register(Progress(config), "regbench-progress")
    dp_options.configure(config)


_TIME_LIMIT, _STATUS = pytest.StashKey[float](), pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    # A trainer's sys.exit() or own KeyboardInterrupt, a hang past the time limit, a thread left running: a failed
    # benchmark, named, no more.
    with plugin_code(quiet=False), within(item.config.stash[_TIME_LIMIT], item.name):
        return (yield)


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    leave_stuck_threads(config.stash.get(_STATUS, 1))  # the results are written: a left thread is not waited for


def depth(config) -> str:
    """The run's depth: "quick" (``--quick``), "full" (``--full``) or "default"."""
    return "quick" if config.getoption("--quick") else "full" if config.getoption("--full") else "default"


#: The studies of the full run beside every problem's FULL_SIZES (bench.problems.default_problems): the marginal-cost
#: study.
FULL_STUDIES = ("test_marginal.py",)


def _size(item: pytest.Item) -> str | None:
    """The role of a fit's size (problems.SIZE_ROLES); None for another benchmark."""
    params = of_item(item)
    return size_role(params["problem"], params["sizes"]) if item.originalname == "test_fit" else None


def _tutorial(item: pytest.Item) -> bool:
    params = of_item(item)
    return item.originalname == "test_fit" and is_tutorial(params["problem"], params["sizes"])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.originalname == "test_floor" or _size(item) in ("full", "sweep"):
            item.add_marker(pytest.mark.sweep)
        if item.path.name in FULL_STUDIES:
            item.add_marker(pytest.mark.full)
    dp_options.collection_modifyitems(config, items)
    chosen = depth(config)
    if chosen == "quick":  # the tutorial's problem alone, its fast trainers: the question a new user asks first
        kept = [item for item in items if _tutorial(item) and item.callspec.params["dtype"] in QUICK_DTYPES
                and not slow_at_the_tutorial_size(item.callspec.params["trainer_id"])]  # fmt: skip
    elif chosen == "default":  # the studies wait for --full (the sizes --sweep asks for are the sweep's to run)
        kept = [item for item in items if not item.get_closest_marker("full")]
    else:
        kept = items
    deselected = [item for item in items if item not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_generate_tests(metafunc):
    if "marginal_n" in metafunc.fixturenames:
        n = metafunc.config.getoption("--marginal-n")
        metafunc.parametrize("marginal_n", [n], ids=[f"n{n}"])
    dp_options.generate_tests(metafunc)


@pytest.fixture
def trainer(trainer_id):
    return require_trainer(trainer_id)


@pytest.fixture
def workers(trainer_id, request):
    """Worker processes of this trainer: --workers for a data-parallel one, 1 for any other."""
    return dp_options.workers_for(trainer_id, request.config)


@pytest.fixture
def rounds(request):
    return request.config.getoption("--regbench-rounds")


def round_budget(config) -> float:
    """Seconds of timed rounds per benchmark, where --regbench-rounds does not fix their number."""
    chosen = config.getoption("--regbench-budget")
    if chosen is not None:
        return chosen
    return QUICK_BUDGET_S if config.getoption("--quick") else ROUND_BUDGET_S


@pytest.fixture
def budget(request):
    return round_budget(request.config)


@pytest.fixture(name="depth")
def depth_fixture(request):
    """The run's depth: "quick", "default" or "full"."""
    return depth(request.config)


def measures_cold_start(config) -> bool:
    """Whether the seed's fits measure a cold start: a study of the full run."""
    return depth(config) == "full" and not config.getoption("--no-cold-start")


@pytest.fixture
def cold_start(request):
    return measures_cold_start(request.config)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["regbench"] = machine_record()
