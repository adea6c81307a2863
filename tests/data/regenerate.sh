#!/usr/bin/env bash
# Regenerates the saved-run fixtures of tests/test_reports.py: two real `pytest bench` runs
# (a subset of trainers, 5 rounds each, the tutorial problem and a two-size sweep with its bandwidth floor),
# with every round's time (stats["data"]). Run it with the project's environment active (.venv/bin on PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf tests/data/storage
for name in base new; do
  python -m pytest bench -q -p no:cacheprovider -k "numpy or numba or scan or torch-autograd-eager-cpu or floor" \
    --regbench-rounds=5 --sweep --sweep-sizes=1000,10000 --marginal-n=20000 \
    --benchmark-storage=file://tests/data/storage --benchmark-save=$name --benchmark-save-data
done
