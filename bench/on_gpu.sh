#!/usr/bin/env bash
# Everything a GPU lease is for, in one command of at most 8 minutes (docs/gpu.md gives the device call): on the GPU
# machine's image (python3 with torch, jax, cupy and numba-cuda; no registry), from the repository's root,
#   wheels   the carried wheels (bench/gpu_wheels.sh, .gpu-wheels/) installed beside the image's packages
#   imports  every package regbench needs, each framework's GPU, the precision policy in force (bench/gpu_check.py)
#   list     regbench list
#   tests    the tests marked gpu (tests/test_gpu.py's device tests first)
#   run-*    every GPU trainer on every problem at its default sizes and over the size sweep to n = 10⁸, with the
#            GPU's bandwidth floor: one saved run per framework (a step cut by its time limit loses its own alone)
#   report   the report of every saved run
# Each step runs under its own time limit (`timeout`), 450 s all together (a run may also spend what the steps before
# it left of theirs), and the script goes on past any failure. Every step's log, the saved runs and the report are
# packed into $OUT (see pack; rewritten after each step, so that a call cut short still brings back what was done)
# with steps.txt, one line a step. Exit status: the number of steps that failed or timed out.
#
#   bench/on_gpu.sh [--dry-run]
#
# --dry-run: the same steps on a CPU machine, on the CPU trainers at tiny sizes; a framework that is not installed
# is skipped, and said so. tests/test_on_gpu.py runs it in CI from a clean environment holding the image's packages
# and the carried wheels alone. PYTHON: the interpreter (default python3, the image's); OUT: where the results go
# (default gpu-out/); GPU_WHEELS: the carried wheels (default .gpu-wheels/). Framework settings are never changed:
# the only variable set is XLA_PYTHON_CLIENT_PREALLOCATE=false (docs/gpu.md), in this script's environment.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
case "$*" in
    "") ;;
    --dry-run) dry=1 ;;
    *) echo "usage: bench/on_gpu.sh [--dry-run]" >&2; exit 2 ;;
esac
py=${PYTHON:-python3}
out=${OUT:-$PWD/gpu-out}
wheels=${GPU_WHEELS:-.gpu-wheels}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/logs"
# JAX would otherwise take 75% of the GPU's memory at its first use, leaving torch, CuPy and Numba-CUDA too little.
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export PYTHONPATH="$work/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the carried wheels, then regbench itself
failed=0

if [ "$dry" = 1 ]; then
    marker=(-m "not gpu and not slow")
    tests=(tests/test_gpu.py tests/test_agreement.py)
    sizes=(--sweep-sizes=100,1000 --marginal-n=1000 --regbench-budget=0.05)
    numba_selected="numba-native or floor"  # the CPU's bandwidth floor is read with Numba (bench/floor.py)
    torch_selected="torch-autograd and not compiled"
else
    marker=(-m gpu)
    # The device tests first, then every trainer's agreement, then the rest (pytest keeps the order of files, not of
    # a folder named after them).
    tests=(tests/test_gpu.py tests/test_agreement.py)
    for file in tests/test_*.py; do
        case "$file" in tests/test_gpu.py | tests/test_agreement.py) ;; *) tests+=("$file") ;; esac
    done
    sizes=(--sweep-sizes=100,1000,10000,100000,1000000,10000000,100000000 --regbench-budget=0.2)
    numba_selected="numba-native"
    torch_selected="(torch-autograd and not compiled) or floor"  # a CUDA device's bandwidth floor, read with torch
fi

# $OUT: steps.txt, report.md, and three archives (at most 16 MiB each comes back from the GPU machine, so the runs, with
# every round's time, are apart): logs.tar.gz, runs.tar.gz (the saved runs, without the compile caches), report.tar.gz.
pack() {
    cp "$work/steps.txt" "$out/steps.txt"
    tar -czf "$out/logs.tar.gz" -C "$work" logs
    if [ -d "$work/storage" ]; then
        tar -czf "$out/runs.tar.gz" --exclude=storage/.cache -C "$work" storage
    fi
    if [ -f "$work/report/report.md" ]; then
        cp "$work/report/report.md" "$out/report.md"
        tar -czf "$out/report.tar.gz" -C "$work" report
    fi
}

record() {  # NAME VERDICT SECONDS WHAT
    printf '%-20s %-22s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$work/steps.txt"
}

# The seconds that the steps before left of their limits: the runs may spend them, so that the whole stays within the
# sum of the limits (450 s) while a run that needs longer than its own gets what the quick steps did not use.
bank=0

# step NAME SECONDS COMMAND...: COMMAND under its time limit, its output in logs/NAME.log; what it leaves of the limit
# goes to the bank.
step() {
    local name=$1 limit=$2 began=$SECONDS status left verdict=ok
    shift 2
    timeout -k 10 "$limit" "$@" >"$work/logs/$name.log" 2>&1
    status=$?
    left=$((limit - (SECONDS - began)))
    [ "$left" -gt 0 ] && bank=$((bank + left))
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        verdict="timed out (${limit}s)"
    elif [ "$status" != 0 ]; then
        verdict="failed (exit $status)"
    fi
    record "$name" "$verdict" "$((SECONDS - began))" "$*"
    if [ "$verdict" != ok ]; then
        failed=$((failed + 1))
        tail -n 15 "$work/logs/$name.log" | sed 's/^/    /'
    fi
    pack
}

installed() {
    "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null
}

# run NAME SECONDS MODULE -k EXPRESSION: one framework's saved run, default sizes and sweep, no cold start, within
# its limit and the bank.
run() {
    local name=$1 limit=$2 module=$3 expression=$4
    if ! installed "$module"; then
        record "$name" "skipped" 0 "$module is not installed"
        bank=$((bank + limit))
        return
    fi
    limit=$((limit + bank))
    bank=0
    step "$name" "$limit" "$py" -m regbench run --name "$name" --storage "$work/storage" --out "$work/reports/$name" \
        -- "${marker[@]}" -k "$expression" --sweep "${sizes[@]}" --no-cold-start --regbench-progress
}

: >"$work/steps.txt"
if compgen -G "$wheels/*.whl" >/dev/null; then
    step wheels 15 "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$work/site" "$wheels"/*.whl
else
    record wheels skipped 0 "none in $wheels/ (bench/gpu_wheels.sh makes them; the call carries them)"
    bank=15
fi
step imports 40 "$py" -m bench.gpu_check $([ "$dry" = 1 ] && echo --dry-run)
step list 25 "$py" -m regbench list
step tests 80 "$py" -m pytest "${marker[@]}" -v -rs -p no:cacheprovider -o console_output_style=classic "${tests[@]}"
# Cheapest first, and the slowest apart: JAX's eager loop (milliseconds an epoch) and torch.compile's trainers (which
# compile again for every size) last.
run run-numpy 40 numpy "numpy-manual"
run run-numba 40 numba "$numba_selected"
run run-jax 50 jax "jax-grad and not eager"
run run-torch 50 torch "$torch_selected"
run run-jax-eager 40 jax "jax-grad-eager"
run run-torch-compiled 50 torch "torch-autograd-compiled"
if [ -d "$work/storage" ]; then
    step report 20 "$py" -m regbench report "$work/storage" --all --out "$work/report"
else
    record report skipped 0 "no run was saved"
    failed=$((failed + 1))
fi
pack
echo "on_gpu: $failed step(s) failed or timed out; results in $out"
exit "$failed"
