"""Issue 36, class 5: the conformance kit sees every process-wide change a trainer makes (at import, in prepare()
or run()), and a trainer that crashes the kit's process is one line naming the check and the death.

The trainers are real installed plugins (tests.plugins); the global-state check runs in its fresh process as the
kit runs it, and ``regbench conform`` in a process of its own, its pytest crashed by a real SIGABRT.
"""

from __future__ import annotations

import os

import pytest

from regbench.conformance import global_state
from tests.plugins import TOY_BACKEND, write_distribution
from tests.test_hardening import ROOT, one_line, regbench


def install(site, prefix: str, at_import: str = "", in_run: str = "") -> str:
    """Trainer ``PREFIX-manual-loop-cpu`` (NumPy's), the toy backend with ``at_import`` run when its module is
    imported and ``in_run`` at the start of each run(). Returns its id."""
    backend = TOY_BACKEND + f"\nimport os, signal, sys, warnings\n{at_import}\n_run = _Fit.run\n\ndef run(self):\n" \
                            f"    {in_run or 'pass'}\n    return _run(self)\n\n_Fit.run = run\n"  # fmt: skip
    spec = (f'from backends import TrainerSpec\nTRAINERS = (TrainerSpec("{prefix}", "manual", "loop", "cpu", '
            f'"{prefix}_backend", framework="numpy", problems=("quadratic",)),)\n')  # fmt: skip
    modules = {f"{prefix}_specs.py": spec, f"{prefix}_backend.py": backend}
    write_distribution(site, f"regbench-{prefix}", {"regbench.trainers": {prefix: f"{prefix}_specs:TRAINERS"}}, modules)
    return f"{prefix}-manual-loop-cpu"


CHANGES = {  # what the plugin does: (at import, in run()), and the setting the kit reports changed
    "os.environ set in run()": ("", "os.environ['HB_FLAG'] = '1'", "environ"),
    "np.seterr at import": ("np.seterr(over='raise')", "", "numpy.geterr"),
    "warnings filter in run()": ("", "warnings.simplefilter('ignore', UserWarning)", "python"),
    "os.chdir in run()": ("", "os.chdir(os.path.dirname(os.getcwd()))", "python"),
    "np.random.seed in run()": ("", "np.random.seed(7)", "numpy.random"),
    "a SIGINT handler at import": ("signal.signal(signal.SIGINT, lambda *a: None)", "", "python"),
    "sys.setrecursionlimit in run()": ("", "sys.setrecursionlimit(12345)", "python"),
}


@pytest.mark.slow  # a fresh process per case (~2 s each)
@pytest.mark.parametrize("case", list(CHANGES), ids=[case.replace(" ", "-") for case in CHANGES])
def test_the_kit_sees_a_process_wide_change(site, case):
    at_import, in_run, key = CHANGES[case]
    trainer = install(site, "toyglobal", at_import, in_run)
    report = global_state.in_fresh_process([trainer])
    assert report["fitted"] == [trainer]
    assert list(report["changed"]) == [key], report["changed"]


@pytest.mark.slow  # a fresh process
def test_a_variable_an_earlier_check_set_is_not_the_fresh_process_s_before(site, monkeypatch):
    """The kit's earlier checks ran run() in its own process, which set the variable: the fresh process starts
    from the environment the kit had when it started, and sees run() set it."""
    trainer = install(site, "toyenv", in_run="os.environ['HB_FLAG'] = '1'")
    monkeypatch.setattr(global_state, "_environment", None)
    global_state.remember_environment()  # as the kit's plugin does before any check
    monkeypatch.setenv("HB_FLAG", "1")  # what an earlier check's run() left
    report = global_state.in_fresh_process([trainer])
    assert report["changed"] == {"environ": {"HB_FLAG": [None, "1"]}}


@pytest.mark.slow  # regbench conform in fresh processes (~5 s each)
@pytest.mark.parametrize(("crash", "death"), [("os.abort()", "killed by SIGABRT"),
                                              ("os._exit(3)", "ended with exit status 3")])  # fmt: skip
def test_conform_of_a_crashing_trainer_names_the_check_and_the_death(site, crash, death):
    trainer = install(site, "toycrash", in_run=crash)
    proc = regbench("conform", trainer, pythonpath=f"{site}{os.pathsep}{ROOT}")
    one_line(proc, 1, f"regbench: conform: the kit's pytest was {death} in regbench/conformance/",
             f"[{trainer}]: the trainer's code crashed its process; the checks after it did not run")  # fmt: skip
    assert "Fatal Python error" not in proc.stdout + proc.stderr


@pytest.mark.slow  # regbench conform in a fresh process (~5 s)
def test_conform_of_a_trainer_raising_keyboard_interrupt_fails_its_checks_not_an_unknown_id(site):
    """Status 2 is an unknown id's; a trainer's own KeyboardInterrupt fails the checks that run it: 1."""
    trainer = install(site, "toykbi", in_run="raise KeyboardInterrupt")
    proc = regbench("conform", trainer, pythonpath=f"{site}{os.pathsep}{ROOT}")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "KeyboardInterrupt (raised by the code, not by a Ctrl-C)" in proc.stdout
    assert " failed" in proc.stdout.splitlines()[-1]
