"""The data-parallel trainers: agreement with the reference over 1, 2 and 3 workers, the persistent group, failures.

Every fit starts worker processes (~1–5 s each on a 2-core machine), so the
file keeps their number down: one group per trainer, dtype and worker count.
float64 fits agree with the float64 reference to round-off over the whole loss
history, since only the order of the additions differs (≤ 1e-12 relative);
float32 fits within the tolerances every trainer meets (tests/test_agreement.py).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import backends
import problems
from backends._data_parallel import shard_bounds
from backends._process_group import RANK_ENV, WorkerError
from backends.metrics import reference_fit
from bench.params import trainer_params
from regbench.conformance.checks import FLOAT64_RTOL, assert_agrees

DP_CPU = ("torch-autograd-dp-cpu", "jax-grad-dp-cpu")
#: A fault must surface within this many seconds, the other workers stopped.
FAIL_WITHIN_S = 10.0
#: Epochs of the agreement fits: a quarter of the tutorial's 800, since each epoch's all-reduce costs
#: 0.2–4 ms on a shared 2-core machine (the benchmarks run all 800).
EPOCHS = 200


def children() -> set[int]:
    """Live child processes of this process, from /proc (no psutil); zombies count as gone."""
    me, found = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it left while we looked
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def no_orphans():
    """The test's worker processes are all gone when it ends."""
    before = children()
    yield
    deadline = time.monotonic() + 5
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children() - before == set()


def assert_float64_agrees(result: backends.FitResult, ref: backends.FitResult) -> None:
    np.testing.assert_allclose(result.losses, ref.losses, rtol=FLOAT64_RTOL, atol=0)
    np.testing.assert_allclose([*backends.flat(result.params), result.final_loss],
                               [*backends.flat(ref.params), ref.final_loss],
                               rtol=FLOAT64_RTOL, atol=0)  # fmt: skip


#: Each trainer's float64 fit (the 1e-12 check) in the default tier, float32 in the slow one: a worker group each.
DEFAULT_FLOAT64 = [pytest.param(*p.values, id=p.id, marks=[*p.marks, *([pytest.mark.slow] if p.values[1] != "float64"
                   else [])]) for p in trainer_params(DP_CPU)]  # fmt: skip


#: 2 workers (the CI's and the benchmarks' count) in the default tier; 1 and 3 (uneven shards) in the slow tier.
@pytest.mark.parametrize(
    "workers",
    [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(3, marks=pytest.mark.slow)],
    ids=lambda k: f"w{k}",
)
@pytest.mark.parametrize(("trainer_id", "dtype"), DEFAULT_FLOAT64)
def test_fit(trainer, dtype, workers, seed, no_orphans):
    """The tutorial's problem and lr; 3 workers hold uneven shards (34, 33, 33 points)."""
    config = backends.TrainConfig(epochs=EPOCHS, dtype=dtype, workers=workers)
    with trainer.prepare(seed, config) as prepared:
        assert prepared.pids == []  # the group starts in the first run, which the harness times apart
        result = prepared.result(prepared.run())
        pids = prepared.pids
        assert len(pids) == workers
        for rank, pid in enumerate(pids):  # each worker knows its rank from its environment
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"{RANK_ENV}={rank}".encode() in environ
        if workers == 2:  # the CI's count: the group persists across runs, and measures its all-reduce
            again = prepared.result(prepared.run())
            assert prepared.pids == pids
            assert result.losses.tobytes() == again.losses.tobytes()  # every run starts from w0, b0
            assert backends.flat(result.params).tobytes() == backends.flat(again.params).tobytes()
            assert 0 < prepared.measure_allreduce(rounds=20) < 1
            assert prepared.worker_peak_bytes() > 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # closed: reaped, not only stopped
    prepared.close()  # idempotent
    with pytest.raises(WorkerError, match="closed"):
        prepared.run()
    ref = reference_fit(seed, config)
    if dtype == "float64":
        assert_float64_agrees(result, ref)
    else:
        assert_agrees(result, ref, dtype, seed.n)


@pytest.mark.slow  # a worker group a trainer and dtype, 131,074 points
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(DP_CPU))
def test_fit_large_shards(trainer, dtype, no_orphans):
    """Shards of 65,537 points, past every size switch of the one-process trainers (JAX's small forms end at 10⁴)."""
    problem = backends.make_problem(131_074, 2)
    config = backends.TrainConfig(epochs=5, lr=0.1 / problem.n, dtype=dtype, workers=2)
    result, ref = trainer.fit(problem, config), reference_fit(problem, config)
    if dtype == "float64":
        assert_float64_agrees(result, ref)
    else:
        assert_agrees(result, ref, dtype, problem.n)


#: Every other model family (problems.mlp, problems.logistic, a plugin's where one is installed): the workers run
#: its module's loss, written once.
OTHER_MODELS = tuple(name for name in problems.usable() if name not in ("quadratic", "linear")
                     and name == problems.get(name).MODEL)  # fmt: skip


@pytest.mark.slow  # a worker group a trainer and model: ~10-20 s each on a shared 2-core machine
@pytest.mark.parametrize("model", OTHER_MODELS)
@pytest.mark.parametrize("trainer_id", DP_CPU)
def test_model_written_once_agrees_with_the_twin(trainer, model, no_orphans):
    """3 workers on 101 points (shards of 34, 34 and 33): float64 agrees with the one-process twin to round-off."""
    module = problems.get(model)
    problem = backends.make_named_problem(model, 101, 3)
    config = backends.TrainConfig(epochs=100, lr=module.lr(101, **module.PARAMS), dtype="float64", workers=3)
    result = trainer.fit(problem, config)
    twin = backends.get_trainer(backends.twin_of(trainer.id)).fit(problem, replace(config, workers=1))
    assert_float64_agrees(result, twin)


@pytest.mark.slow  # a worker group a trainer
@pytest.mark.parametrize("trainer_id", DP_CPU)
def test_empty_shard_and_fit_closes_its_group(trainer, no_orphans):
    """One point over two workers: the empty shard adds nothing (JAX pads it to one masked point).

    ``fit()`` starts a group and shuts it down: ``no_orphans`` checks that none is left.
    """
    problem = backends.make_problem(1, 3)
    config = backends.TrainConfig(epochs=50, lr=0.05, workers=2)
    assert_float64_agrees(trainer.fit(problem, config), reference_fit(problem, config))


@pytest.mark.slow  # fault injection: a group started, trained, killed
@pytest.mark.parametrize(("trainer_id", "rank"), [("torch-autograd-dp-cpu", 1), ("jax-grad-dp-cpu", 0)])
def test_killed_worker_fails_the_run(trainer, rank, no_orphans):
    """SIGKILL one worker mid-run: the run raises within seconds naming it, and the others are stopped.

    JAX's rank 0 also hosts the coordination service: the harder case.
    """
    problem = backends.make_problem(100_000, 0)
    config = backends.TrainConfig(epochs=100_000, lr=1e-6, dtype="float32", workers=2)  # minutes if not stopped
    prepared = trainer.prepare(problem, config)
    killed: list[float] = []

    def kill() -> None:
        while not prepared.pids:  # the group is starting
            time.sleep(0.05)
        time.sleep(1.0)  # well into the training (or, on a slow machine, the rendezvous: also a fault)
        killed.append(time.monotonic())
        os.kill(prepared.pids[rank], signal.SIGKILL)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    with pytest.raises(WorkerError, match=rf"worker rank {rank} \(pid \d+\) was killed by SIGKILL") as info:
        prepared.run()
    assert time.monotonic() - killed[0] < FAIL_WITHIN_S
    assert info.value.rank == rank
    killer.join(timeout=5)
    assert prepared.group.closed


@pytest.mark.slow  # fault injection: a group whose worker never joins
@pytest.mark.parametrize("trainer_id", DP_CPU)
def test_worker_lost_before_rendezvous_fails_the_start(trainer, monkeypatch, no_orphans):
    """A worker that exits before it joins the group: an error naming it, no hang in the rendezvous."""
    monkeypatch.setenv("REGBENCH_DP_FAULT", "1:exit-before-init")
    prepared = trainer.prepare(backends.make_problem(10, 0), backends.TrainConfig(epochs=2, workers=2))
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"worker rank 1 \(pid \d+\) exited with status 3 during 'start'"):
        prepared.run()
    assert time.monotonic() - start < 60  # the start itself (imports) may be slow on a loaded machine; no hang


def test_single_process_trainers_refuse_workers():
    trainer = backends.get_trainer(backends.REFERENCE_ID)
    with pytest.raises(ValueError, match="runs in one process: workers must be 1, got 2"):
        trainer.prepare(backends.seed_problem(), backends.TrainConfig(workers=2))


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_count(workers):
    with pytest.raises(ValueError, match=r"^workers "):
        backends.TrainConfig(workers=workers)


@pytest.mark.parametrize(("n", "k", "sizes"), [(100, 3, [34, 33, 33]), (4, 2, [2, 2]), (2, 3, [1, 1, 0]), (7, 1, [7])])
def test_shards_are_contiguous_and_cover_the_data(n, k, sizes):
    bounds = shard_bounds(n, k)
    assert [stop - start for start, stop in bounds] == sizes
    assert bounds[0][0] == 0
    assert bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
