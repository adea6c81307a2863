"""The conformance kit: regbench's contract and agreement tests, run against any installed trainer id.

``regbench conform ID [ID ...]`` runs them (it prints the pytest command it runs:
``python -m pytest -p regbench.conformance.plugin --pyargs regbench.conformance --trainer ID ...``), so that a
plugin's trainer gets the checks the built-in ones get. Rules:

- each check is a test of this package (``test_*.py``), parametrised by the plugin (``plugin.py``) with every
  ``--trainer`` id (``test_float64_agrees_with_the_reference[numpy-manual-fused-cpu]``); a trainer that cannot
  run here is skipped with the registry's reason; ``--trainer`` is required, and an id the registry does not know
  is a usage error naming the known ones;
- the assertions live once, in ``checks.py`` (agreement and its tolerances, the result contract, inputs left
  alone, refusals) and ``global_state.py`` (the frameworks' process-wide settings, read in a fresh process);
  regbench's own tests/ import them from here;
- what a trainer must do: agree with the float64 NumPy reference over the whole loss history (float64 to
  round-off, float32 within tolerance) on the tutorial's problem and on ``linear`` where its spec lists it;
  follow the ``prepare``/``run``/``result`` contract (a PreparedFit; a FitResult of float64 read-only values:
  losses of shape (epochs,), ``w`` a float for the seed's model and a vector of d for ``linear``, finite, not
  diverged, and a diverging fit reported as such, without an exception or a warning); leave its inputs alone
  (the problem's arrays and parameters, two runs of one PreparedFit identical, fresh buffers from every
  ``run()``); change no process-wide setting of any framework; refuse bad arguments: TypeError for a problem
  or a config of the wrong type, ValueError for ``workers`` other than 1 (a trainer that is not
  data-parallel) and for a problem its spec does not list, naming the problems it runs;
- the kit stands alone: it needs no conftest or pytest setting of regbench's checkout, its fixtures
  (``conftest.py`` here) come before those of the project it is run from, and its tests run with warnings as
  errors wherever they run; a whole run for one CPU trainer takes seconds to tens of seconds (the README's
  measurements; torch.compile's compiles take minutes).
"""

import pytest

# Assertions in the shared checks report their values as the tests' own do.
pytest.register_assert_rewrite("regbench.conformance.checks", "regbench.conformance.global_state")
