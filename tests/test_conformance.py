"""The conformance kit (regbench/conformance): it passes for built-in trainers, fails for wrong ones, stands alone.

The kit runs in this process (``pytest.main``, from an empty folder: no checkout's settings, no conftest of
ours) for two cheap trainers and for a deliberately wrong one (an installed plugin's, every value off by
1e-6, relative); each check is also fed a wrong trainer of its own. ``regbench conform`` itself, a subprocess
running a compiling trainer too, is in the slow tier.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import backends
import problems
from backends import numpy_manual, spec_of
from regbench import cli
from regbench.conformance import checks, global_state
from regbench.conformance.command import pytest_command
from tests.plugins import TOY_BACKEND, write_distribution

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ("numpy-manual-tutorial-cpu", "numpy-manual-fused-cpu")
KIT_TESTS = 14  # per trainer: 5 agreement, 9 contract (one of them per dtype)


class Outcomes:
    """A pytest plugin that keeps each test's outcome, by node id (its call's, or its setup's where that failed)."""

    def __init__(self) -> None:
        self.by_test: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.by_test[report.nodeid.rsplit("::", 1)[-1]] = report.outcome


def runs_here(trainer_id: str) -> bool:
    """Whether a trainer can run here, probing it alone (backends.available() would import every framework)."""
    try:
        backends.get_trainer(trainer_id)
    except backends.TrainerUnavailable:
        return False
    return True


def run_kit(folder: Path, *args: str) -> tuple[int, dict[str, str]]:
    """The kit in this process, run from ``folder`` as a plugin author would (``regbench conform``'s command)."""
    outcomes = Outcomes()
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        # Without this session's warning filters (regbench's pyproject.toml): the kit's own decide.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.resetwarnings()
            status = pytest.main([*pytest_command([])[3:], "-q", *args], plugins=[outcomes])
    finally:
        os.chdir(cwd)
    return int(status), outcomes.by_test


def test_the_kit_passes_for_built_in_trainers(tmp_path):
    status, outcomes = run_kit(tmp_path, *(part for tid in CHEAP for part in ("--trainer", tid)))
    assert status == 0, outcomes
    assert len(outcomes) == KIT_TESTS * len(CHEAP)
    # A built-in that runs every model family has none to refuse (the check is skipped); the fused NumPy loop runs
    # the seed's and linear's alone, and refuses the others.
    every = [tid for tid in CHEAP if all(spec_of(tid).runs(model) for model in problems.MODELS)]
    assert every == ["numpy-manual-tutorial-cpu"]
    refusals = {f"test_refuses_problems_of_a_model_it_does_not_list[{tid}]" for tid in every}
    # ... and runs every model written once (mlp, logistic), which the fused loop does not.
    models = {f"test_models_written_once_agree_with_the_reference[{tid}]" for tid in CHEAP if tid not in every}
    assert {test for test, outcome in outcomes.items() if outcome != "passed"} == refusals | models
    assert {outcomes[test] for test in refusals | models} == {"skipped"}
    for tid in CHEAP:
        assert f"test_float64_agrees_with_the_reference[{tid}]" in outcomes
        assert f"test_global_state_is_left_alone[{tid}]" in outcomes


class OffByAMillionth:
    """A PreparedFit whose every value is off by 1e-6, relative: far beyond float64's tolerance, within float32's."""

    def __init__(self, prepared) -> None:
        self.prepared = prepared

    def run(self):
        return self.prepared.run()

    def result(self, raw) -> backends.FitResult:
        r = self.prepared.result(raw)
        off = 1 + 1e-6
        params = {name: value * off for name, value in r.params.items()}
        return backends.FitResult.from_arrays(params, r.losses * off, r.final_loss * off)


#: A plugin's backend whose every value is off by 1e-6, relative (tests.plugins' toy loop, made wrong).
OFF_BACKEND = (
    TOY_BACKEND
    + """
class _Off(_Fit):
    def run(self):
        w, b, losses, final = super().run()
        return w * (1 + 1e-6), b * (1 + 1e-6), losses * (1 + 1e-6), final * (1 + 1e-6)


def prepare(variant, device, problem, config):
    return _Off(problem, config)
"""
)


def test_the_kit_fails_for_a_wrong_plugin_trainer(tmp_path, site):
    """An installed plugin's trainer, off by a millionth: wrong in float64, right within float32's tolerance."""
    spec = "TrainerSpec('wrong', 'manual', 'loop', 'cpu', 'off_backend', framework='numpy')"
    specs = f"from backends import TrainerSpec\nTRAINERS = {spec}\n"
    write_distribution(site, "regbench-wrong", {"regbench.trainers": {"wrong": "off_specs:TRAINERS"}},
                       {"off_specs.py": specs, "off_backend.py": OFF_BACKEND})  # fmt: skip
    status, outcomes = run_kit(tmp_path, "--trainer", "wrong-manual-loop-cpu")
    assert status == pytest.ExitCode.TESTS_FAILED
    # The two float64 fits: of the tutorial's data, and of the same data made in float32.
    assert {test for test, outcome in outcomes.items() if outcome == "failed"} == {
        "test_float64_agrees_with_the_reference[wrong-manual-loop-cpu]",
        "test_data_made_in_float32_fit_alike[wrong-manual-loop-cpu]",
    }
    assert outcomes["test_float32_agrees_with_the_reference[wrong-manual-loop-cpu]"] == "passed"
    assert outcomes["test_global_state_is_left_alone[wrong-manual-loop-cpu]"] == "passed"  # its fresh process too
    # It runs the seed's model alone: the kit checks that it refuses linear's.
    assert outcomes["test_refuses_problems_of_a_model_it_does_not_list[wrong-manual-loop-cpu]"] == "passed"


class Spamming(OffByAMillionth):
    """A PreparedFit that warns on every run, its values right."""

    def run(self):
        warnings.warn("a trainer's chatter", UserWarning, stacklevel=1)
        return self.prepared.run()

    def result(self, raw) -> backends.FitResult:
        return self.prepared.result(raw)


def test_the_kit_fails_a_trainer_that_warns_wherever_it_runs(tmp_path, monkeypatch):
    """Warnings are errors in the kit's tests, in a folder without regbench's pytest settings too."""
    real = numpy_manual.prepare
    monkeypatch.setattr(numpy_manual, "prepare", lambda variant, *args: Spamming(real(variant, *args))
                        if variant == "fused" else real(variant, *args))  # fmt: skip
    status, outcomes = run_kit(tmp_path, "--trainer", "numpy-manual-fused-cpu", "-k", "test_float32_agrees")
    assert status == pytest.ExitCode.TESTS_FAILED
    assert outcomes == {"test_float32_agrees_with_the_reference[numpy-manual-fused-cpu]": "failed"}


def test_the_kit_skips_a_trainer_that_cannot_run_here_and_refuses_unknown_ids(tmp_path):
    if runs_here("numpy-manual-tutorial-cuda"):
        pytest.skip("CuPy and a CUDA device are here")
    status, outcomes = run_kit(tmp_path, "--trainer", "numpy-manual-tutorial-cuda", "-k", "float64_agrees")
    assert status == 0
    assert set(outcomes.values()) == {"skipped"}
    for args in ([], ["--trainer", "numpy-magic-cpu"]):
        status, outcomes = run_kit(tmp_path, *args)
        assert status == pytest.ExitCode.USAGE_ERROR
        assert outcomes == {}


# --- each check against a trainer wrong in its own way ------------------------------------------------------------


@dataclasses.dataclass
class Wrong:
    """A trainer that delegates to the fused NumPy loop, with one fault."""

    fault: str
    id: str = "numpy-manual-fused-cpu"

    def prepare(self, problem, config):
        if self.fault == "mutates its problem":
            problem.x.flags.writeable = True  # Problem owns its arrays: the flag can be set back
            problem.x[0] += 1.0
            problem.x.flags.writeable = False
        if self.fault == "ignores bad arguments":
            return None
        real = backends.get_trainer(self.id)
        if self.fault == "takes any number of workers":
            config = dataclasses.replace(config, workers=1)
        return Shared(real.prepare(problem, config), self.fault)

    def fit(self, problem, config):
        prepared = self.prepare(problem, config)
        return prepared.result(prepared.run())


class Shared:
    """A PreparedFit that reuses one loss buffer for every run, or makes every run differ."""

    def __init__(self, prepared, fault: str) -> None:
        self.prepared, self.fault, self.runs, self.buffer = prepared, fault, 0, None

    def run(self):
        w, b, losses, final_loss = self.prepared.run()
        self.runs += 1
        if self.fault == "reuses its buffer":
            if self.buffer is None:
                self.buffer = np.empty_like(losses)
            self.buffer.flags.writeable = True  # FitResult.from_arrays made it read-only; it owns its data
            self.buffer[:] = losses
            losses = self.buffer
        if self.fault == "differs between runs":
            b += 1e-9 * self.runs
        return w, b, losses, final_loss

    def result(self, raw):
        return self.prepared.result(raw)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("mutates its problem", "prepare/run/result changed problem.x"),
        ("reuses its buffer", "the two runs' losses share memory"),
        ("differs between runs", "two runs of one PreparedFit gave different results"),
    ],
)
def test_inputs_check_fails_for_a_wrong_trainer(fault, message):
    problem, config = checks.small_linear("float64")
    problem = backends.Problem(problem.x.copy(), problem.y, problem.params0, model="linear")  # its own
    with pytest.raises(AssertionError, match=message):
        checks.assert_leaves_inputs_alone(Wrong(fault), problem, dataclasses.replace(config, epochs=5))
    checks.assert_leaves_inputs_alone(backends.get_trainer("numpy-manual-fused-cpu"), problem, config)


def test_refusal_checks_fail_for_a_trainer_that_takes_anything():
    problem = backends.seed_problem()
    with pytest.raises(AssertionError, match="expected TypeError, nothing was raised"):
        checks.assert_refuses_wrong_types(Wrong("ignores bad arguments"), problem)
    with pytest.raises(AssertionError, match="expected ValueError, nothing was raised"):
        checks.assert_refuses_other_worker_counts(Wrong("takes any number of workers"), problem)
    seed_only = dataclasses.replace(spec_of("numpy-manual-fused-cpu"), problems=("quadratic",))
    with pytest.raises(AssertionError, match="expected ValueError, nothing was raised"):
        checks.assert_refuses_unlisted_models(Wrong("ignores bad arguments"), seed_only)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: {"losses": r.losses[:-1]}, r"losses have shape \(799,\)"),
        (lambda r: {"values": (np.array([r.params["w"]]), r.params["b"])}, r"w is float64 of shape \(1,\), not "),
        (lambda r: {"names": ("b", "w"), "values": r.values[::-1]}, r"parameters \['b', 'w'\], not the problem's"),
        (lambda r: {"names": ("w",), "values": r.values[:1]}, r"parameters \['w'\], not the problem's"),
        (lambda r: {"values": (r.params["w"], np.inf)}, "b is not finite"),
        (lambda r: {"final_loss": float("nan")}, "final_loss is nan"),
    ],
    ids=["losses", "w", "order", "missing", "b", "final_loss"],
)
def test_result_contract_fails_for_a_wrong_result(change, message):
    problem, config = checks.tutorial("float64")
    result = backends.get_trainer("numpy-manual-fused-cpu").fit(problem, config)
    checks.assert_result_contract(result, problem, config)
    with pytest.raises(AssertionError, match=message):
        checks.assert_result_contract(dataclasses.replace(result, **change(result)), problem, config)


def test_agreement_check_fails_a_millionth_off_in_float64_only():
    for dtype, fails in (("float64", True), ("float32", False)):
        problem, config = checks.tutorial(dtype)
        result = OffByAMillionth(backends.get_trainer("numpy-manual-fused-cpu").prepare(problem, config))
        result = result.result(result.run())
        with pytest.raises(AssertionError) if fails else contextlib.nullcontext():
            checks.assert_agrees_with_the_reference(result, problem, config)


def test_global_state_check_sees_a_changed_setting():
    before = global_state.settings(("numpy",))
    old = np.seterr(over="ignore")
    try:
        changed = global_state.changes(before, global_state.settings(("numpy",)))
    finally:
        np.seterr(**old)
    assert changed == {"numpy.geterr": {"over": ["warn", "ignore"]}}


# --- regbench conform ------------------------------------------------------------------------------------------


def test_conform_refuses_an_unknown_id_in_one_line_before_pytest(capsys):
    assert cli.main(["conform", "numpy-manual-tutorial-cpu", "numpy-magic-cpu"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no "running:": pytest never started
    assert err.count("\n") == 1
    assert err.startswith("regbench: error: conform: unknown trainer 'numpy-magic-cpu'; known trainers: ")
    assert all(tid in err for tid in backends.trainer_ids())


def test_conform_prints_the_command_and_passes_pytests_status_through(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr("regbench.run._run_pytest", lambda cmd, *args: (ran.append(cmd) or 1, None))
    assert cli.main(["conform", "numpy-manual-tutorial-cpu", "numpy-manual-tutorial-cpu"]) == 1
    (cmd,) = ran
    assert cmd[:3] == [sys.executable, "-m", "pytest"]
    assert cmd[-6:] == ["-p", "regbench.conformance.plugin", "--pyargs", "regbench.conformance", "--trainer",
                        "numpy-manual-tutorial-cpu"]  # fmt: skip
    assert capsys.readouterr().out.startswith(f"running: {sys.executable} -m pytest ")


def conform(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "regbench", "conform", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_conform_with_an_unknown_id_in_a_fresh_process(tmp_path):
    proc = conform("numpy-magic-cpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # a compiling trainer in a fresh pytest, and the global-state check's fresh processes (~30 s)
def test_conform_runs_the_kit_from_a_project_of_ones_own(tmp_path):
    """From a folder with pytest settings and a conftest of its own (a plugin author's project), neither of which
    reaches the kit: warnings are errors there, and its conftest's ``trainer`` fixture would fail."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\nfilterwarnings = error\n")
    (tmp_path / "conftest.py").write_text("import pytest\n\n\n@pytest.fixture\ndef trainer():\n"
                                          "    raise RuntimeError('a fixture of the project')\n")  # fmt: skip
    proc = conform("numpy-manual-tutorial-cpu", "jax-grad-jit-cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = proc.stdout.splitlines()[0]
    assert first.startswith("running: ")
    assert first.endswith(" --trainer numpy-manual-tutorial-cpu --trainer jax-grad-jit-cpu")
    # Each runs every model family: its refusal of another is skipped, with the reason (and JAX's every check,
    # where it cannot run here).
    passed = (KIT_TESTS - 1) * (2 if runs_here("jax-grad-jit-cpu") else 1)
    assert f" {passed} passed, {2 * KIT_TESTS - passed} skipped" in proc.stdout.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conftest.py", "pytest.ini"]  # nothing written there
