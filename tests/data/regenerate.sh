#!/usr/bin/env bash
# Regenerates tests/data/v1, the saved run of the current record schema (records.model) that tests/test_records.py
# reads: one real `pytest bench` run of a subset of trainers, 5 rounds each, the tutorial problem, a one-size sweep
# with its bandwidth floor and a small marginal study, every round's time kept. Run it with the project's environment
# active (.venv/bin on PATH).
# tests/data/storage holds two runs of schema 0 (written before records described themselves), kept as they were
# written: they prove that old files still load (records.upgrade), so they are never regenerated.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf tests/data/v1
python -m pytest bench -q -p no:cacheprovider \
  -k "(test_fit and (numpy-manual or numba or torch-autograd-eager-cpu)) or test_floor or (test_sweep and numpy-manual-fused) or (test_marginal and numba)" \
  --regbench-rounds=5 --no-cold-start --sweep --sweep-sizes=1000 --marginal-n=20000 \
  --benchmark-storage=file://tests/data/v1 --benchmark-save=v1 --benchmark-save-data
