"""torch compiled on the CPU: the one-call training loop against the Python-driven chunks it replaced.

The loop (a ``while_loop`` compiled with inductor's C++ wrapper, see backends/torch_autograd.py) runs the
same compiled steps as the chunks: the same loss history, w and b, bit for bit. Compiling it sets its
options per compile, so a fit leaves torch's threads, default dtype and compiler config as it found them,
and a fit's bits do not depend on what the process, or its compile cache, compiled before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backends
from bench.params import require_trainer

ROOT = Path(__file__).resolve().parents[1]
TRAINER = "torch-autograd-compiled-cpu"


@pytest.mark.slow  # torch.compile of each size and dtype (10-30 s a case); test_agreement covers the tutorial's
@pytest.mark.parametrize("dtype", backends.DTYPES)
@pytest.mark.parametrize(
    ("n", "epochs"),
    [(100, 800), (37, 45), (1, 3), (20_000, 20)],
    ids=["tutorial", "chunks-and-tail", "one-point", "threaded"],  # 20,000 points: split across threads, if > 1
)
def test_loop_runs_the_chunks_steps(dtype, n, epochs):
    ta = pytest.importorskip("backends.torch_autograd")
    trainer = require_trainer(TRAINER)
    problem = backends.seed_problem() if n == 100 else backends.make_problem(n, 3)
    config = backends.TrainConfig(epochs=epochs, lr=1e-3 if n == 100 else 0.1 / n, dtype=dtype)
    prepared = trainer.prepare(problem, config)
    loop = prepared.result(prepared.run())
    assert ta._loop_failed is None, ta._loop_failed  # the fit above ran the loop, not the chunks
    chunks = prepared.result(prepared._run_compiled(chunks=True))
    assert loop.losses.shape == (epochs,)
    assert loop.losses.tobytes() == chunks.losses.tobytes()
    assert backends.flat(loop.params).tobytes() == backends.flat(chunks.params).tobytes()
    # The final loss is summed in the loop's graph, the chunks' in eager torch: the same sum in another order.
    np.testing.assert_allclose(loop.final_loss, chunks.final_loss, rtol=8 * np.finfo(dtype).eps)


_FITS = """
import json, sys
import backends
from regbench.conformance.global_state import changes, initialise, settings

initialise(("torch",))  # torch's own first compile (the recursion limit, warnings filters): not a fit's doing
before = settings(("torch",))
fits = {}
for n, dtype in json.loads(sys.argv[1]):
    problem = backends.seed_problem() if n == 100 else backends.make_problem(n, 3)
    config = backends.TrainConfig(epochs=200, lr=1e-3 if n == 100 else 0.1 / n, dtype=dtype)
    r = backends.get_trainer("torch-autograd-compiled-cpu").fit(problem, config)
    fits[f"{n}-{dtype}"] = [r.losses.tobytes().hex(), backends.flat(r.params).tobytes().hex(), r.final_loss.hex()]
print(json.dumps({"fits": fits, "changed": changes(before, settings(("torch",)))}, default=repr))
"""


def _fits_in_fresh_process(fits: list, cache: Path) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", _FITS, json.dumps(fits)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh processes, each compiling from an empty cache
def test_fits_leave_torch_as_found_and_depend_on_their_own_size(tmp_path):
    """Two fresh processes: compiling and fitting change no global state; the tutorial's fits are the same bits
    whether the process compiled them first, or after a threaded size and a second serial size (n dynamic)."""
    require_trainer(TRAINER)
    first = _fits_in_fresh_process([[100, "float32"], [100, "float64"]], tmp_path / "cache")
    later = _fits_in_fresh_process([[20_000, "float32"], [37, "float32"], [100, "float32"], [100, "float64"]],
                                   tmp_path / "cache")  # fmt: skip
    assert first["changed"] == {}
    assert later["changed"] == {}
    for key in ("100-float32", "100-float64"):
        assert first["fits"][key] == later["fits"][key], key


@pytest.mark.slow  # one torch.compile of the loop (20-40 s)
def test_another_epoch_count_or_split_size_compiles_nothing():
    """The loop is compiled once per model, regime and dtype: the epochs are dynamic from the first compile, and n
    too where kernels split across threads, so the default run's large sizes and the marginal study's two epoch
    counts share one compile (each recompile cost 20-34 s on 2 cores)."""
    ta = pytest.importorskip("backends.torch_autograd")
    from torch._dynamo.utils import counters

    trainer = require_trainer(TRAINER)
    split_n = ta._cpu_parallel_min_n()
    n = split_n if split_n < 10**6 else 100  # one thread: no size splits, the epochs still vary
    fits = [(n, 20), (n, 7)] + ([(2 * n + 3, 20)] if n == split_n else [])

    def fit(size, epochs):
        problem = backends.make_problem(size, 3)
        return trainer.fit(problem, backends.TrainConfig(epochs=epochs, lr=0.1 / size, dtype="float32"))

    first = fit(*fits[0])
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    for size, epochs in fits[1:]:
        result = fit(size, epochs)
        assert result.losses.shape == (epochs,)
    assert counters["stats"]["unique_graphs"] == graphs
    assert ta._loop_failed is None, ta._loop_failed
    assert first.losses.shape == (20,)
