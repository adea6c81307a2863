"""How many timed rounds a benchmark gets, and the stopwatch every measurement uses.

Rules: rounds follow a time budget, so slow variants get fewer, never fewer
than the run's depth allows (``least_rounds``): MIN_ROUNDS, what ``compare`` judges on;
in the default run SLOW_MIN_ROUNDS for a fit slower than SLOW_FIT_S (its median still
shown, judged by ``compare`` only between full runs) and no peak memory (``measures_memory``);
a quick run's QUICK_MIN_ROUNDS,
a rough look, not for ``compare``, which refuses quick runs against deeper ones;
every time is ``time.perf_counter`` around a call that returns only when its device is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Time budget per benchmark (seconds of timed rounds), a quick run's (``--quick``), and the bounds on rounds.
ROUND_BUDGET_S = 1.5
QUICK_BUDGET_S = 0.2
MIN_ROUNDS = 5
#: One: a quick run's slowest fits (JAX's eager loop, ~10 s each) get a single timed round besides their first call;
#: compare judges nothing on fewer than 5 rounds anyway (reports.stats.Method.min_rounds).
QUICK_MIN_ROUNDS = 1
MAX_ROUNDS = 1000
#: The default run's least rounds of a fit slower than SLOW_FIT_S (JAX's eager loop: ~4 s a fit; a data-parallel
#: group's and NumPy's float64 MLP: ~1.5 s), besides its first call, as a quick run's: three rounds would cost the
#: default run ~22 s of its 4 minutes (2026-12-04), for a median compare does not judge; a full run gives them
#: MIN_ROUNDS.
SLOW_FIT_S, SLOW_MIN_ROUNDS = 1.0, 1
#: A quick run's dtypes: one, so that every trainer answers in about a minute (agreement is still with float64's).
QUICK_DTYPES = ("float32",)


def least_rounds(depth: str, call_s: float) -> int:
    """The fewest timed rounds a benchmark of a run of ``depth`` gets, its warm call taking ``call_s``."""
    if depth == "quick":
        return QUICK_MIN_ROUNDS
    return SLOW_MIN_ROUNDS if depth == "default" and call_s >= SLOW_FIT_S else MIN_ROUNDS


def measures_memory(depth: str, call_s: float | None) -> bool:
    """Whether a benchmark of a run of ``depth`` measures its peak memory, one whole fit more, its warm call taking
    ``call_s`` (None: not known, where the rounds were given): never in a quick run; in the default run only for
    fits faster than SLOW_FIT_S (JAX's eager loop would spend ~5 s a dtype on it); always under ``--full``."""
    if depth == "quick":
        return False
    return depth != "default" or call_s is None or call_s < SLOW_FIT_S


def slow_fits(depth: str) -> int:
    """The whole fits a slow benchmark makes at ``depth``: its first call, its fewest rounds, and where the depth
    measures a slow fit's memory, one for it."""
    return 1 + least_rounds(depth, SLOW_FIT_S) + measures_memory(depth, SLOW_FIT_S)


def choose_rounds(warm_call_s: float, budget_s: float = ROUND_BUDGET_S, least: int = MIN_ROUNDS) -> int:
    """Enough rounds for a stable median within the budget; at least ``least`` even for slow variants."""
    return max(least, min(MAX_ROUNDS, int(budget_s / max(warm_call_s, 1e-9))))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()``'s value and the seconds it took."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
