"""Issue 25, data-parallel: a stopped (not dead) worker is named within the hang timeout; impossible groups refused.

The supervisor's own tests use framework-free workers (tests.dp_helpers) and a
hang timeout of a few seconds; one SIGSTOP per data-parallel trainer checks the
same inside a real fit, where the peers sit in a collective waiting for the
stopped rank (and used to fail after 61 s, torch, or 10 s, JAX, naming the
wrong rank with a C++ stack).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import backends
from backends import _process_group
from backends._process_group import HANG_TIMEOUT_ENV, WorkerError, WorkerGroup, resolve_hang_timeout
from tests.test_dp import DP_CPU, children, no_orphans  # noqa: F401 (a fixture)

#: The hang timeout of these tests, and the slack they allow beyond it (one heartbeat, a loaded machine).
HANG_S = 3.0
SLACK_S = 3.0


def stop_later(pids: Callable[[], list[int]], rank: int, after_s: float, stopped: list[float]) -> threading.Thread:
    def stop() -> None:
        while not pids():
            time.sleep(0.05)
        time.sleep(after_s)
        stopped.append(time.monotonic())
        os.kill(pids()[rank], signal.SIGSTOP)

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    return thread


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message
    assert "Traceback" not in message
    assert "C++" not in message


def parent_command(pid: int) -> str:
    """The command line of process ``pid``'s parent, its arguments joined by spaces."""
    parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    return Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.slow  # a worker group started, then stopped: seconds of timeouts each
@pytest.mark.parametrize("torchrun", [False, True], ids=["own", "torchrun"])
def test_a_stopped_worker_is_named_within_the_hang_timeout(torchrun, no_orphans):  # noqa: F811
    """Whoever started the workers (this supervisor, or torchrun's agent, which does not notice a stopped one)."""
    with WorkerGroup("tests.dp_helpers:Sleeper", [None] * 3, hang_timeout_s=HANG_S, torchrun=torchrun) as group:
        assert group.call("sleep", 0.01) == [0, 1, 2]
        assert all(("backends._torchrun" in parent_command(pid)) == torchrun for pid in group.pids)
        time.sleep(HANG_S + 1)  # an idle group sends nothing and is not declared hung
        # A busy live worker beats from a thread: longer than the timeout is fine.
        assert group.call("sleep", HANG_S + 1.5) == [0, 1, 2]
        stopped: list[float] = []
        stop_later(lambda: group.pids, 1, 0.5, stopped)
        with pytest.raises(WorkerError, match=r"^worker rank 1 \(pid \d+\) stopped answering during 'sleep': "
                                              r"no heartbeat for [\d.]+ s \(hang timeout 3 s\) \(its process is "
                                              r"stopped: SIGSTOP") as info:  # fmt: skip
            group.call("sleep", 60)
        elapsed = time.monotonic() - stopped[0]
        assert HANG_S - _process_group.BEAT_S <= elapsed < HANG_S + SLACK_S, elapsed  # the last beat came before
        assert info.value.rank == 1
        assert_one_clean_line(str(info.value))
        assert group.closed
    assert not any(os.path.exists(f"/proc/{pid}") for pid in group.pids)  # the stopped one too: killed and reaped


def test_hang_timeout_from_the_environment_and_the_keyword(monkeypatch):
    assert resolve_hang_timeout() == _process_group.HANG_TIMEOUT_S == 30.0
    monkeypatch.setenv(HANG_TIMEOUT_ENV, "2.5")
    assert resolve_hang_timeout() == 2.5
    assert resolve_hang_timeout(7) == 7.0  # the keyword wins
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(HANG_TIMEOUT_ENV, bad)
        with pytest.raises(
            ValueError, match=rf"^{HANG_TIMEOUT_ENV} must be a positive number of seconds, got '{bad}'$"
        ):
            resolve_hang_timeout()
    with pytest.raises(ValueError, match=r"^hang_timeout_s must be a positive number of seconds, got True$"):
        resolve_hang_timeout(True)


@pytest.mark.slow  # a worker group started, then stopped: seconds of timeouts each
@pytest.mark.parametrize(("trainer_id", "rank"), [("torch-autograd-dp-cpu", 1), ("jax-grad-dp-cpu", 0)])
def test_a_stopped_worker_fails_the_fit_naming_it(trainer_id, rank, monkeypatch, no_orphans):  # noqa: F811
    """SIGSTOP one worker mid-training: its peers wait in a collective; the error names the stopped rank.

    JAX's rank 0 also hosts the coordination service (whose own heartbeat gives up after 10 s).
    """
    trainer = backends.get_trainer(trainer_id)
    monkeypatch.setenv(HANG_TIMEOUT_ENV, str(HANG_S))
    problem = backends.make_problem(100_000, 0)
    config = backends.TrainConfig(epochs=100_000, lr=1e-6, dtype="float32", workers=2)  # minutes if not stopped
    prepared = trainer.prepare(problem, config)
    stopped: list[float] = []
    # Past the start (interpreters, imports, rendezvous): a run of 10⁵ epochs takes far longer than that.
    stop_later(lambda: prepared.pids, rank, 1.0, stopped)
    with pytest.raises(
        WorkerError, match=rf"^worker rank {rank} \(pid \d+\) stopped answering during '(train|start)'"
    ) as info:
        prepared.run()
    assert time.monotonic() - stopped[0] < HANG_S + SLACK_S
    assert info.value.rank == rank
    assert_one_clean_line(str(info.value))
    assert prepared.group.closed


@pytest.mark.parametrize("trainer_id", DP_CPU)
def test_more_workers_than_the_cores_allow_are_refused_before_starting(trainer_id, no_orphans):  # noqa: F811
    """workers=1000 on a 2-core machine used to start 1000 interpreters (~240 MB each)."""
    trainer = backends.get_trainer(trainer_id)
    cores = _process_group.usable_cores()
    before = children()
    with pytest.raises(ValueError, match=rf"^workers=1000: at most 4 per core on the {cores} core\(s\) this "
                                         rf"process may use, so at most {4 * cores}$"):  # fmt: skip
        trainer.prepare(backends.seed_problem(), backends.TrainConfig(workers=1000))
    assert children() == before


@pytest.mark.parametrize("trainer_id", DP_CPU)
def test_more_workers_than_memory_holds_are_refused_before_starting(trainer_id, monkeypatch):
    trainer = backends.get_trainer(trainer_id)
    monkeypatch.setattr(_process_group, "available_memory", lambda: 600 * 2**20)
    before = children()
    with pytest.raises(ValueError, match=r"^workers=4: the group needs ~1 GiB \(~256 MiB a worker\), more than the "
                                         r"0.586 GiB of memory available$"):  # fmt: skip
        trainer.prepare(backends.seed_problem(), backends.TrainConfig(workers=4))
    assert children() == before
    trainer.prepare(backends.seed_problem(), backends.TrainConfig(workers=2)).close()  # 2 fit


def test_a_large_shard_counts_in_the_estimate(monkeypatch):
    from backends.torch_dp import FOOTPRINT

    monkeypatch.setattr(_process_group, "available_memory", lambda: 4 * 2**30)
    problem = backends.make_problem(20_000_000, 0)  # 10⁷ float64 points a worker: ~2 GiB each for torch
    assert FOOTPRINT.worker_bytes(problem.n, 2, 8) > 2 * 2**30
    with pytest.raises(ValueError, match=r"^workers=2: the group needs ~4.\d+ GiB \(~2\d\d\d MiB a worker\)"):
        backends.get_trainer("torch-autograd-dp-cpu").prepare(problem, backends.TrainConfig(workers=2))


@pytest.mark.slow  # a worker group started, then stopped: seconds of timeouts each
def test_a_stopped_jax_worker_is_named_when_jax_gives_up_first(monkeypatch, no_orphans):  # noqa: F811
    """JAX's coordination service gives up on a silent peer after 10 s, failing the others: the stopped one is named."""
    from backends.jax_dp import HEARTBEAT_TIMEOUT_S

    monkeypatch.setenv(HANG_TIMEOUT_ENV, "120")
    config = backends.TrainConfig(epochs=100_000, lr=1e-6, dtype="float32", workers=2)
    prepared = backends.get_trainer("jax-grad-dp-cpu").prepare(backends.make_problem(100_000, 0), config)
    stopped: list[float] = []
    stop_later(lambda: prepared.pids, 1, 1.0, stopped)
    expected = r"^worker rank 1 \(pid \d+\) stopped answering during '(train|start)': .*its peers failed waiting for it"
    with pytest.raises(WorkerError, match=expected) as info:
        prepared.run()
    assert time.monotonic() - stopped[0] < HEARTBEAT_TIMEOUT_S + SLACK_S
    assert info.value.rank == 1
    assert_one_clean_line(str(info.value))
