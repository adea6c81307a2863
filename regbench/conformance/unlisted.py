"""A problem no trainer lists: ``linear``'s contract under a name of the kit's own.

The kit registers it (``problems.register``) only while it checks that a trainer refuses a problem its spec
does not list, as it would a plugin's problem; every built-in trainer lists every built-in problem.
"""

from __future__ import annotations

from problems.linear import (  # noqa: F401 - the problem contract (problems.CONTRACT), re-exported
    DEFAULT_SIZES,
    DRAWS,
    PARAMS,
    SWEEP_SIZES,
    features,
    floor_bytes,
    gradient,
    loss,
    lr,
    make,
    optimum,
)

NAME = "conformance-unlisted"
