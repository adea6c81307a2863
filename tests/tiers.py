"""Which trainer cases go to the slow tier (tests/conftest.py): the ones that pay a compile or a slow loop again.

``slow_if_per_size``: the trainers that compile again for every new size (torch.compile's graphs, JAX's programs
and its eager ops, seconds each) are slow at any size other than the tutorial's. ``slow_if_costly``: of the
tutorial's own fits, the float64 case of a trainer whose fit costs seconds (a compile, or JAX's eager loop at
~10 ms an epoch) is slow; its float32 case stays in the default tier, so that every trainer is checked there.
"""

from __future__ import annotations

import pytest

from backends._registry import specs

PER_SIZE = frozenset(s.id for s in specs() if s.backend == "jax" or (s.backend == "torch" and s.compiles))
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
    """``trainer_params`` with the float64 case of a costly trainer marked slow."""
    return _slow_where(params, lambda values: values[0] in COSTLY and values[1] == "float64")
