"""A fit leaves every process-wide setting of every framework as it found it.

Rules: checked in a fresh process (``tests/global_state.py``) that imports each
framework, records its settings, fits every in-process trainer in both dtypes
on a small and a blocked/threaded size, and records them again. What counts as
process-wide: the environment (``XLA_FLAGS`` …), every JAX config value, torch's
thread counts, default dtype, matmul precision and its dynamo/inductor config,
Numba's thread count, NumPy's error and print state. Trainers may choose
per-computation options (compile options, their own threads); nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("global_state.py")


@pytest.mark.slow  # a fresh process imports every framework and fits every trainer
def test_fits_leave_global_state_untouched():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # The fits ran, on every framework that is installed here.
    assert report["fitted"], report
    assert {"numpy", "jax", "torch", "numba"} <= set(report["frameworks"]), report["frameworks"]
    assert report["changed"] == {}, f"settings changed by fit(): {report['changed']}"
