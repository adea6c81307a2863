"""Which trainer cases go to the slow tier (tests/conftest.py): the ones that pay a compile or a slow loop again.

``slow_if_per_size``: the trainers that compile again for every new size (torch.compile's graphs, JAX's programs
and its eager ops, seconds each) are slow at any size other than the tutorial's. ``slow_if_costly``: the tutorial's
own fits of a trainer whose fit costs seconds (torch.compile's, JAX's eager loop at ~10 ms an epoch) are slow;
the default tier checks every other trainer, and these two's code paths through their siblings (torch eager,
JAX jit and scan share their step functions).
"""

from __future__ import annotations

import pytest

from backends import specs

PER_SIZE = frozenset(s.id for s in specs() if s.backend == "jax" or (s.backend == "torch" and s.compiles))
#: Their tutorial-size cases too: torch.compile's first graph (~40 s with an empty inductor cache, CI's) and
#: JAX's eager loop (~10 s a fit) are checked in the slow tier alone.
COSTLY = frozenset(
    s.id for s in specs() if (s.backend == "torch" and s.compiles) or (s.backend, s.variant) == ("jax", "eager")
)


def _slow_where(params: list, slow) -> list:
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, *([pytest.mark.slow] if slow(p.values) else [])])
            for p in params]  # fmt: skip


def slow_if_per_size(params: list) -> list:
    """``trainer_params`` with every case of a per-size compiler marked slow."""
    return _slow_where(params, lambda values: values[0] in PER_SIZE)


def slow_if_costly(params: list) -> list:
    """``trainer_params`` with every case of a costly trainer marked slow."""
    return _slow_where(params, lambda values: values[0] in COSTLY)
