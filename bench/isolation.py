"""One process per framework: which framework a benchmark belongs to, and the plugin that runs one framework's.

Rules: a benchmark's framework is its trainer's framework (its spec's ``import_name``),
or the ``framework`` marker of a benchmark that names no trainer (the
bandwidth floor and the native loop's thread counts run Numba). A figure
depends on what else its process has loaded or run (thread pools that spin,
allocators, a JIT's caches), so ``regbench run`` runs each framework's
benchmarks in a pytest process of their own: a plan pass (``--regbench-plan``,
with ``--collect-only``) lists every selected benchmark with its framework,
then one process per framework keeps only its own (``--regbench-framework``)
and records its own framework's facts in the machine record (bench.environment).
Every record says which frameworks its process had loaded when it was
measured (``loaded_frameworks``), so that a reader sees the isolation instead of
trusting it. ``pytest bench`` on its own still runs everything in one process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from backends import spec_of, specs
from bench.params import of_item
from bench.priors import first_compiles, prior_s
from bench.rounds import ROUND_BUDGET_S

MARK = "framework"


def framework_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker(MARK)
    if marker is not None:
        return marker.args[0]
    params = of_item(item)
    trainer_id = params.get("trainer_id")
    if trainer_id is None:
        raise pytest.UsageError(f"{item.nodeid}: a benchmark names a trainer or has a @pytest.mark.{MARK}(name)")
    return spec_of(trainer_id).import_name


def frameworks() -> tuple[str, ...]:
    """Every framework whose presence in a process can change another's figures: each trainer's (regbench's own
    and every plugin's), then the GPU runtimes the specs name (CuPy, under NumPy's CUDA trainers); NumPy left
    out, as every process has it."""
    found = specs()
    names = (*(spec.import_name for spec in found), *(spec.gpu_runtime for spec in found))
    return tuple(dict.fromkeys(name for name in names if name not in ("", "numpy")))


def loaded_frameworks() -> list[str]:
    """The frameworks imported in this process so far."""
    return [name for name in frameworks() if name in sys.modules]


def plan(items: list[pytest.Item], cold_start: bool = False, budget_s: float = ROUND_BUDGET_S, fits: int = 5
         ) -> list[dict]:  # fmt: skip
    """Every selected benchmark with its framework, its test's name, its trainer and dtype (None where it has none)
    and what it is expected to cost (bench.priors), in the order pytest would run them."""
    params = [of_item(item) for item in items]
    first = first_compiles(items)
    return [{"nodeid": item.nodeid, "framework": framework_of(item), "test": item.name, "trainer": p.get("trainer_id"),
             "dtype": p.get("dtype"), "prior_s": prior_s(item, cold_start, budget_s, fits, index in first)}
            for index, (item, p) in enumerate(zip(items, params, strict=True))]  # fmt: skip


class Isolation:
    """``--regbench-plan FILE``: write the plan; ``--regbench-framework NAME``: keep that framework's benchmarks."""

    def __init__(self, plan_path: str | None, framework: str | None, cold_start: bool = False,
                 budget_s: float = ROUND_BUDGET_S, fits: int = 5) -> None:  # fmt: skip
        self.plan_path = Path(plan_path) if plan_path else None
        self.framework = framework
        self.cold_start, self.budget_s, self.fits = cold_start, budget_s, fits

    @pytest.hookimpl(trylast=True)  # after every other selection (-k, -m, --quick, the data-parallel options)
    def pytest_collection_modifyitems(self, config, items) -> None:
        if self.framework is not None:
            mine = {item.nodeid: framework_of(item) == self.framework for item in items}
            kept = [item for item in items if mine[item.nodeid]]
            deselected = [item for item in items if not mine[item.nodeid]]
            if deselected:
                config.hook.pytest_deselected(items=deselected)
                items[:] = kept
        if self.plan_path is not None:
            found = plan(items, self.cold_start, self.budget_s, self.fits)
            self.plan_path.write_text(json.dumps({"benchmarks": found}))
