"""The roles a trainer plays in comparisons: written into every record, read by the reports.

Rules: plain strings, imported by the trainer registry (which assigns them) and
by the reports (which read them back from saved records): a record names its
roles, so a report never asks today's registry about yesterday's run.
"""

REFERENCE = "reference"  # the float64 oracle of every agreement check, and the report's speed-up base
BASELINE = "baseline"  # the tutorial-faithful loop of its backend on its device: that backend's speed-ups are over it
NATIVE_LOOP = "native loop"  # a plain compiled loop in strict IEEE order: framework time ratios are set against it
CPU_LIMIT = "CPU limit"  # the fastest implementation of the algorithm on a CPU
GPU_LIMIT = "GPU limit"  # the fastest implementation of the algorithm on a GPU
ROLES = (REFERENCE, BASELINE, NATIVE_LOOP, CPU_LIMIT, GPU_LIMIT)
#: Roles of native code rather than a framework: drawn apart (hatched, thick lines) in the reports.
NATIVE_ROLES = (NATIVE_LOOP, CPU_LIMIT, GPU_LIMIT)
