"""Trainers from installed distributions (backends.discovery): found through the ``regbench.trainers`` entry
points, run like regbench's own, and refused one line each when broken, without breaking anything else."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import threading
import time

import pytest

import backends
import problems
from backends import _registry
from records.sources import TIME_LIMIT_ENV, TimeLimitExceeded, time_limit, within
from regbench.cli import main
from tests.plugins import TOY_BACKEND, write_distribution
from tests.test_hardening import ROOT, one_line, regbench

TOY = "toy-manual-loop-cpu"
SPEC = 'TrainerSpec("toy", "manual", "loop", "cpu", "toy_backend", framework="numpy", problems=("quadratic",){extra})'


def _named(cases: list[tuple]) -> list:
    return [pytest.param(*case, id=case[0].replace(" ", "-")) for case in cases]


def _install(root, spec_source: str = SPEC.format(extra=""), backend: str = TOY_BACKEND,
             name: str = "regbench-toy", prefix: str = "toy") -> None:  # fmt: skip
    """Distribution ``name``: entry point ``prefix``, modules ``prefix_specs`` and ``prefix_backend``."""
    spec_source = spec_source.replace("toy_backend", f"{prefix}_backend")
    specs = f"from backends import TrainerSpec\nTRAINERS = ({spec_source},)\n"
    modules = {f"{prefix}_specs.py": specs, f"{prefix}_backend.py": backend}
    write_distribution(root, name, {"regbench.trainers": {prefix: f"{prefix}_specs:TRAINERS"}}, modules)


def _listed(capsys) -> dict[str, str]:
    assert main(["list"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("problem ")]
    return {line.split()[0] + (f" {i}" if line.startswith("broken") else ""): line for i, line in enumerate(lines)}


def _broken_lines(listed: dict[str, str]) -> list[str]:
    return [line for key, line in listed.items() if key.startswith("broken")]


def test_a_plugin_s_trainer_is_listed_run_and_recorded_as_its_own(site, capsys):
    _install(site)
    assert TOY in backends.trainer_ids()
    listed = _listed(capsys)
    assert listed[TOY].split()[1] == "ok"
    assert "from regbench-toy 1.0" in listed[TOY]
    assert listed[backends.REFERENCE_ID].split()[1] == "ok"  # the built-ins are all still there
    assert not _broken_lines(listed)
    problem, config = backends.seed_problem(), backends.TrainConfig()
    result = backends.get_trainer(TOY).fit(problem, config)
    ref = backends.get_trainer(backends.REFERENCE_ID).fit(problem, config)
    assert abs(result.final_loss - ref.final_loss) <= 1e-12 * ref.final_loss
    assert _registry.source_of(TOY).distribution == "regbench-toy"


def test_listing_a_plugin_s_trainers_imports_not_its_backend(site):
    import sys

    _install(site)
    assert TOY in backends.trainer_ids()
    assert "toy_backend" not in sys.modules
    assert backends.available()[TOY].ok
    assert "toy_backend" in sys.modules


@pytest.mark.parametrize(
    ("case", "install", "error"),
    _named([
        ("fails to import", {"spec_source": "1 / 0"}, "loading toy_specs:TRAINERS failed: ZeroDivisionError"),
        ("exits at import", {"spec_source": "__import__('sys').exit('bye')"},
         "loading toy_specs:TRAINERS failed: SystemExit: bye"),
        ("its own Ctrl-C at import", {"spec_source": "(_ for _ in ()).throw(KeyboardInterrupt)"},
         "loading toy_specs:TRAINERS failed: KeyboardInterrupt (raised by the code, not by a Ctrl-C)"),
        ("not specs", {"spec_source": "'toy'"}, "toy_specs:TRAINERS is not a TrainerSpec or a tuple of them"),
        ("malformed id", {"spec_source": SPEC.replace('"toy"', '"Toy-Box"', 1).format(extra="")},
         "backend 'Toy-Box' is not lower-case letters"),
        ("shadows a built-in", {"spec_source": 'TrainerSpec("numpy", "manual", "tutorial", "cpu", "toy_backend")'},
         "numpy-manual-tutorial-cpu refused: a built-in trainer's id"),
        ("claims the reference", {"spec_source": SPEC.format(extra=', roles=("reference",)')},
         "the reference is regbench's own NumPy loop"),
        ("an unknown role", {"spec_source": SPEC.format(extra=', roles=("fastest",)')}, "unknown role 'fastest'"),
        ("a taken role", {"spec_source": SPEC.format(extra=', roles=("native loop",)')},
         "role 'native loop' is held by numba-native-loop-cpu"),
    ]),
)  # fmt: skip
def test_a_refused_entry_point_or_spec_is_one_line_naming_its_distribution(site, capsys, case, install, error):
    _install(site, **install)
    listed = _listed(capsys)
    (line,) = _broken_lines(listed)
    assert line.split(maxsplit=1)[1].startswith("regbench-toy 1.0 (entry point toy): "), line
    assert error in line
    assert TOY not in backends.trainer_ids()
    assert listed[backends.REFERENCE_ID].split()[1] == "ok"
    assert {spec.id for spec in _registry.BUILTIN_SPECS} <= set(listed)  # every built-in still listed


def test_a_duplicated_id_keeps_the_first_distribution_s(site, capsys):
    _install(site, name="regbench-toy")
    _install(site, name="regbench-toy-fork")  # the same id again, from another distribution
    listed = _listed(capsys)
    (line,) = _broken_lines(listed)
    assert "regbench-toy-fork 1.0" in line
    assert f"{TOY} refused: already declared by regbench-toy 1.0 (entry point toy)" in line
    assert listed[TOY].split()[1] == "ok"


@pytest.mark.parametrize(
    ("case", "backend", "status"),
    _named([
        ("lacks prepare", "def unavailable(variant, device):\n    return ''\n",
         "unavailable: toy_backend lacks prepare (a backend module defines unavailable, prepare)"),
        ("fails to import", "import not_a_module_anywhere\n",
         "unavailable: importing toy_backend failed: ModuleNotFoundError"),
        ("unavailable raises", TOY_BACKEND + "\ndef unavailable(variant, device):\n    raise OSError('no driver')\n",
         "unavailable: probing toy on cpu failed: OSError: no driver"),
        ("unavailable returns a non-string", TOY_BACKEND + "\ndef unavailable(variant, device):\n    return None\n",
         "unavailable: toy_backend.unavailable() returned NoneType, not a reason string"),
        ("prepare raises", TOY_BACKEND + "\ndef prepare(variant, device, problem, config):\n    raise KeyError(1)\n",
         "broken: prepare() failed: KeyError: 1"),
        ("prepare returns nothing", TOY_BACKEND + "\ndef prepare(variant, device, problem, config):\n    return 1\n",
         "broken: prepare() failed: TypeError: prepare() returned int, not a PreparedFit"),
        ("prepare exits", TOY_BACKEND + "\ndef prepare(variant, device, problem, config):\n    raise SystemExit(3)\n",
         "broken: prepare() failed: SystemExit: 3"),
        ("prepare raises its own Ctrl-C", TOY_BACKEND + "\ndef prepare(*args):\n    raise KeyboardInterrupt\n",
         "broken: prepare() failed: KeyboardInterrupt (raised by the code, not by a Ctrl-C)"),
        ("prepare raises a megabyte", TOY_BACKEND + "\ndef prepare(*args):\n    raise KeyError('x' * 2**20)\n",
         f"broken: prepare() failed: KeyError: 'xxx{'x' * 296}... (1048578 characters)"),
    ]),
)  # fmt: skip
def test_a_broken_backend_module_is_its_trainer_s_line_and_no_one_else_s(site, capsys, case, backend, status):
    _install(site, backend=backend)
    listed = _listed(capsys)
    line = listed[TOY]
    assert status in line, line
    assert line.rstrip().endswith("[regbench-toy 1.0] | problems: quadratic | from regbench-toy 1.0"), line
    assert not _broken_lines(listed)
    assert sum(" ok " in f"{v} " for v in listed.values()) == sum(a.ok for a in backends.available().values()) - (
        "broken" in status
    )  # every other trainer as before
    # Through the API, what prepare() raises reaches the caller as it is (fit() stays a plain call: its fixed cost is
    # measured); regbench's benchmarks and checks are the ones that take sys.exit() for a failure.
    expected = (backends.TrainerUnavailable, KeyError, AttributeError, SystemExit, KeyboardInterrupt)
    with pytest.raises(expected):
        backends.get_trainer(TOY).fit(backends.seed_problem(), backends.TrainConfig())


def test_what_a_plugin_prints_while_listed_is_not_shown(site, capsys):
    """A prepare() that prints a megabyte: its trainer's line, as any other's, and nothing more."""
    printing = "\n_prepare = prepare\ndef prepare(*args):\n    print('x' * 2**20)\n    return _prepare(*args)\n"
    backend = TOY_BACKEND + printing
    _install(site, backend=backend)
    assert main(["list"]) == 0
    out = capsys.readouterr()
    assert "xxx" not in out.out + out.err
    assert len(out.out.splitlines()) == len(backends.trainer_ids()) + len(problems.names())
    assert next(line for line in out.out.splitlines() if line.startswith(TOY)).split()[1] == "ok"


def test_a_framework_under_a_missing_package_is_not_installed(site, capsys):
    _install(site, SPEC.replace('framework="numpy"', 'framework="hb_nosuchpkg.sub"').format(extra=""))
    line = _listed(capsys)[TOY]
    assert "unavailable: hb_nosuchpkg.sub is not installed (pip install hb_nosuchpkg.sub) [regbench-toy 1.0]" in line


def test_a_real_ctrl_c_during_a_plugin_s_import_stops_the_command(site, capsys):
    """A SIGINT, really sent, while a plugin loads: regbench's 130, not a broken plugin."""
    _install(site, "__import__('os').kill(__import__('os').getpid(), __import__('signal').SIGINT), "
             "__import__('time').sleep(5)")  # fmt: skip
    assert main(["list"]) == 130
    out = capsys.readouterr()
    assert out.err == "regbench: interrupted: nothing saved\n"
    assert out.out == ""


def test_a_plugin_that_exits_leaves_conform_its_own_checks(site, capsys):
    _install(site, "__import__('sys').exit(1)")
    assert main(["conform", "no-such-trainer"]) == 2  # the id check ran, over the other trainers
    err = capsys.readouterr().err
    assert err.startswith("regbench: error: conform: unknown trainer 'no-such-trainer'; known trainers: "), err
    assert backends.REFERENCE_ID in err


def test_regbench_declares_its_own_trainers_as_an_entry_point():
    """The built-ins go through the loader a plugin's go through, by the entry points pyproject.toml declares."""
    from pathlib import Path

    import tomllib

    from backends import discovery

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]
    assert declared[discovery.GROUP] == {discovery.BUILTIN.name: discovery.BUILTIN.value}
    assert declared[problems.GROUP] == {ep.name: ep.value for ep in problems.BUILTIN}
    assert tuple(_registry.specs()[: len(_registry.BUILTIN_SPECS)]) == _registry.BUILTIN_SPECS
    assert problems.names()[: len(problems.BUILTIN)] == problems.MODELS  # each family's own problem, first


WIDE = """
    from problems.linear import *  # the linear model's loss, gradient and optimum
    from problems.linear import make as _make

    NAME = "wide"
    MODEL = "linear"
    PARAMS = {"d": 40, "noise": 0.2}
    DEFAULT_SIZES = ({"n": 50, "d": 40},)
    SWEEP_SIZES = DEFAULT_SIZES

    def make(n, seed, dtype="float64", d=40, noise=0.2):
        return _make(n, seed, dtype, d=d, noise=noise)
"""


def _install_problem(root, module: str = WIDE, name: str = "wide") -> None:
    write_distribution(
        root, "regbench-wide", {"regbench.problems": {name: "wide_problem"}}, {"wide_problem.py": module}
    )


def test_a_plugin_s_problem_of_a_known_model_is_run_by_every_trainer_of_that_model(site, capsys):
    from bench.problems import default_problems

    _install_problem(site)
    assert problems.names() == ("quadratic", "linear", "mlp", "logistic", "wide")
    assert ("wide", {"n": 50, "d": 40}) in default_problems()
    problem = backends.make_named_problem("wide", 50, seed=0)
    assert (problem.model, problem.d) == ("linear", 40)
    assert _registry.runs(backends.REFERENCE_ID, "wide")
    result = backends.get_trainer(backends.REFERENCE_ID).fit(problem, backends.TrainConfig(lr=1e-3))
    assert result.final_loss < result.losses[0]
    assert main(["list"]) == 0
    assert "problem wide                     ok | from regbench-wide 1.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "module", "name", "line"),
    _named([
        ("fails to import", "1 / 0", "wide", "problem wide                     broken: problem 'wide' from "
         "regbench-wide 1.0 (entry point wide): importing wide_problem failed: ZeroDivisionError"),
        ("lacks the contract", "NAME = 'wide'", "wide", "wide_problem lacks MODEL, PARAMS, DEFAULT_SIZES"),
        ("an unknown model", WIDE.replace('MODEL = "linear"', 'MODEL = "cubic"'), "wide",
         "its NAME is 'wide' and its MODEL 'cubic' (one of quadratic, linear, mlp, logistic, or its own name for a "
         "family of its own)"),
        ("sizes not a tuple", WIDE.replace('DEFAULT_SIZES = ({"n": 50, "d": 40},)', "DEFAULT_SIZES = 5"), "wide",
         "wide_problem's DEFAULT_SIZES is 5, not a tuple of dicts of n ≥ 1, a seed and PARAMS's keys"),
        ("a size of an unknown parameter", WIDE.replace('"d": 40},)', '"k": 40},)'), "wide",
         "DEFAULT_SIZES is ({'n': 50, 'k': 40},), not a tuple"),
        ("a function not callable", WIDE + "    lr = 0.1\n", "wide", "wide_problem's lr is not callable"),
        ("takes a built-in's name", WIDE, "linear", "broken                           regbench-wide 1.0 (entry point "
         "linear): problem 'linear' refused: a built-in problem's name"),
    ]),
)  # fmt: skip
def test_a_broken_problem_is_one_line_and_the_others_run(site, capsys, case, module, name, line):
    from bench.problems import default_problems

    _install_problem(site, module, name)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert line in out, out
    assert "problem linear                   ok" in out
    # the seed's, linear's, mlp's and logistic's default size; no "wide"
    assert [name for name, _ in default_problems()] == ["quadratic", "linear", "mlp", "logistic"]


@pytest.mark.slow  # a quick run of two benchmarks in a fresh process (~10 s)
def test_plugins_that_exit_interrupt_or_break_their_sizes_cost_a_quick_run_their_own_figures(site, tmp_path):
    """Issue 36: an entry point that calls sys.exit() at import, a trainer whose run() raises KeyboardInterrupt
    (no Ctrl-C), a trainer that runs `linear` alone, a problem whose DEFAULT_SIZES is 5: the run goes on, the
    raising trainer's benchmark fails alone, the linear one is not collected for the tutorial's problem."""
    write_distribution(site, "regbench-exits", {"regbench.trainers": {"exits": "exits_specs:TRAINERS"}},
                       {"exits_specs.py": "import sys\nsys.exit('bye')\n"})  # fmt: skip
    interrupting = TOY_BACKEND + "\n_Fit.run = lambda self: (_ for _ in ()).throw(KeyboardInterrupt)\n"
    _install(site, backend=interrupting)
    linear = SPEC.replace('"toy", "manual"', '"toylin", "manual"').replace('("quadratic",)', '("linear",)')
    _install(site, linear.format(extra=""), name="regbench-toylin", prefix="toylin")
    _install_problem(site, WIDE.replace('DEFAULT_SIZES = ({"n": 50, "d": 40},)', "DEFAULT_SIZES = 5"))
    assert "toylin-manual-loop-cpu" in backends.trainer_ids()
    assert "DEFAULT_SIZES is 5" in problems.status()["wide"]
    storage = tmp_path / "storage"
    proc = regbench("run", "--quick", "--storage", storage, "--out", tmp_path / "out", "--", "-k",
                    "numpy-manual-fused-cpu or toy", pythonpath=f"{site}{os.pathsep}{ROOT}")  # fmt: skip
    line = one_line(proc, 1, "regbench: benchmarks failed in the numpy process (the report lists them)")
    assert str(storage) in line  # the others are saved
    assert "INTERNALERROR" not in proc.stdout
    assert f"{TOY} float32: FAILED (records.sources.PluginExit: KeyboardInterrupt (raised by the code" in proc.stdout
    assert "numpy-manual-fused-cpu float32 n=100: median" in proc.stdout
    assert "toylin" not in proc.stdout  # not collected: its spec does not list the tutorial's model


@pytest.mark.slow  # the kit's 13 checks of the NumPy loop in a fresh process (~10 s)
def test_a_plugin_that_exits_at_import_leaves_conform_of_a_built_in_alone(site):
    """Issue 36: `regbench conform` of a built-in exited 1 where a plugin's spec module calls sys.exit()."""
    _install(site, "__import__('sys').exit('bye')")
    proc = regbench("conform", backends.REFERENCE_ID, pythonpath=f"{site}{os.pathsep}{ROOT}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout.splitlines()[-1]


def test_a_hang_or_a_thread_left_running_fails_within_the_time_limit(monkeypatch):
    """sources.within: a sleep past the limit is stopped by SIGALRM; a non-daemon thread left running fails too."""
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match=r"^a sleep ran past its time limit of 0\.2 s$"), within(0.2, "a sleep"):
        time.sleep(30)
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL  # put back
    stop = threading.Event()
    try:
        with pytest.raises(TimeLimitExceeded, match=r"^a fit left 1 thread\(s\) running \(stuck\)"), within(5, "a fit"):
            threading.Thread(target=stop.wait, name="stuck").start()
    finally:
        stop.set()
    monkeypatch.setenv(TIME_LIMIT_ENV, "nan")
    with pytest.raises(ValueError, match="REGBENCH_TIME_LIMIT_S must be a finite number of seconds > 0, got 'nan'"):
        time_limit()
    monkeypatch.setenv(TIME_LIMIT_ENV, "2.5")
    assert time_limit() == 2.5


@pytest.mark.slow  # a quick run of three benchmarks in a fresh process (~10 s)
def test_a_hanging_plugin_fails_its_benchmark_at_the_time_limit_and_the_run_is_saved(site, tmp_path):
    """Issue 36, class 2: a run() that sleeps ten minutes, and one that leaves a non-daemon thread, each fail their
    benchmark, named; the run ends (it waited forever) and the others' figures are saved."""
    _install(site, backend=TOY_BACKEND + "\nimport time\n_Fit.run = lambda self: time.sleep(600)\n")
    threading_backend = TOY_BACKEND + (
        "\nimport threading, time\n_run = _Fit.run\n\ndef run(self):\n"
        "    threading.Thread(target=time.sleep, args=(600,), name='stuck').start()\n    return _run(self)\n\n"
        "_Fit.run = run\n"
    )
    threads = SPEC.replace('"toy", "manual"', '"toythread", "manual"').format(extra="")
    _install(site, threads, threading_backend, name="regbench-toythread", prefix="toythread")
    storage = tmp_path / "storage"
    started = time.monotonic()
    proc = regbench("run", "--quick", "--storage", storage, "--out", tmp_path / "out", "--", "-k",
                    "numpy-manual-fused-cpu or toy", "--regbench-time-limit=2", pythonpath=f"{site}{os.pathsep}{ROOT}",
                    timeout=120)  # fmt: skip
    assert time.monotonic() - started < 60
    line = one_line(proc, 1, "regbench: benchmarks failed in the numpy process (the report lists them)")
    assert str(storage) in line  # the fused loop's figures are saved
    assert f"{TOY} float32: FAILED (records.sources.TimeLimitExceeded: test_fit[quadratic-n100,seed100-{TOY}-" \
           "float32] ran past its time limit of 2 s)" in proc.stdout  # fmt: skip
    assert re.search(r"test_fit\[quadratic-n100,seed100-toythread-manual-loop-cpu-float32\] left \d+ thread\(s\) "
                     r"running \(stuck\)", proc.stdout)  # fmt: skip
    assert "numpy-manual-fused-cpu float32 n=100: median" in proc.stdout


@pytest.mark.slow  # the kit's checks of a sleeping trainer, a second each (~15 s)
def test_conform_of_a_hanging_trainer_fails_its_checks_at_the_time_limit(site):
    """Issue 36, class 2: `regbench conform` of a trainer whose run() sleeps ten minutes waited forever."""
    _install(site, backend=TOY_BACKEND + "\nimport time\n_Fit.run = lambda self: time.sleep(600)\n")
    started = time.monotonic()
    env = {**os.environ, TIME_LIMIT_ENV: "1"}
    proc = regbench("conform", TOY, pythonpath=f"{site}{os.pathsep}{ROOT}", env=env, timeout=120)
    assert time.monotonic() - started < 90
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"TimeLimitExceeded: test_trainer_protocol[{TOY}] ran past its time limit of 1 s" in proc.stdout


def test_a_pool_python_ends_at_exit_is_not_a_thread_left_running():
    """torch.compile starts a concurrent.futures pool on its first compile and keeps it: idle, and ended by Python
    at exit, it fails no benchmark (a plain thread left running still does: the test above)."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kept")
    try:
        with within(5, "a compile"):
            pool.submit(time.sleep, 0.01).result()
        assert any(t.name.startswith("kept") for t in threading.enumerate())  # still there, and not a failure
    finally:
        pool.shutdown()
