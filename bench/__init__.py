"""regbench's benchmarks: ``pytest bench --benchmark-save=NAME``.

Rules: one job per module: ``harness`` (timing a trainer and writing its record),
``rounds`` (how many, and the stopwatch), ``memory``, ``cold_start``, ``floor``
(the bandwidth floor), ``environment`` (the machine record), ``problems`` (the
workloads and their records), ``outcomes`` (how each selected benchmark ended),
``gpu`` (device facts and event timers), ``params`` (trainer × dtype parameters,
shared with tests/), ``option_types`` (the suite's own options checked as
pytest parses them), ``parent_watch`` (pytest dies with ``regbench run``).
bench imports backends and records, never reports.
"""
