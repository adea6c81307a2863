"""regbench's benchmarks: ``pytest bench --benchmark-save=NAME``."""
