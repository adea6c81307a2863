#!/usr/bin/env bash
# Regenerates tests/data/v4, the saved run of the current record schema (records.model) that tests/test_records.py
# reads: one real `pytest bench` run of a subset of trainers, 5 rounds each, the tutorial problem, the seed's problem
# at one sweep size with the bandwidth floors of both sizes and a small marginal study, every round's time kept. Run it with the project's environment
# active (.venv/bin on PATH).
# tests/data/storage holds two runs of schema 0 (written before records described themselves) and tests/data/v1 one
# of schema 1 (a fit's parameters as w, b and θ), tests/data/v2 one of schema 2 (the other problems' fits of kind
# "problem", no size roles) and tests/data/v3 one of schema 3 (the seed's sweep of kind "sweep"), kept as they were
# written: they prove that old files still load,
# report and compare as they did (records.upgrade; tests/data/expected holds their reports as schema 1's regbench
# wrote them), so they are never regenerated.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf tests/data/v4
python -m pytest bench -q -p no:cacheprovider \
  -k "(test_fit and seed100 and (numpy-manual or numba or torch-autograd-eager-cpu)) or (test_floor and quadratic and not n1000000) or (test_fit and quadratic-n1000- and numpy-manual-fused) or (test_marginal and numba)" \
  --regbench-rounds=5 --full --no-cold-start --sweep --sweep-sizes=1000 --marginal-n=20000 \
  --benchmark-storage=file://tests/data/v4 --benchmark-save=v4 --benchmark-save-data
