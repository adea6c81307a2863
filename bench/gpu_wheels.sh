#!/usr/bin/env bash
# Run on the CPU machine, before a GPU call: downloads the wheels of the packages regbench needs that the GPU
# machine's image lacks (bench/gpu_image.txt), at constraints.txt's versions, for CPython 3.12 on x86-64 (the image's
# Python), into .gpu-wheels/ (ignored by git), which the device call names in `carry`; bench/on_gpu.sh installs them
# there. Idempotent: a wheel already there is kept, and no other version of a package is left beside it.
#
#   bench/gpu_wheels.sh [--python-version X.Y] [DIR]     (defaults: 3.12, .gpu-wheels)
#
# tests/test_on_gpu.py checks that CARRIED is what regbench's requirements need beyond the image's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

#: What the image lacks: pydantic (records.model, regbench.options) and what it needs beyond the image,
#: typing-extensions included: pydantic asks for >= 4.16, and nobody has read the image's version; and
#: array-api-compat (the models written once against the array API: problems/, the backends' generic paths) and
#: array-api-strict (the tests run those models' maths under it).
CARRIED=(pydantic pydantic-core annotated-types typing-inspection typing-extensions array-api-compat array-api-strict)

pyver=3.12
if [ "${1:-}" = "--python-version" ]; then
    pyver=${2:?"--python-version needs X.Y"}
    shift 2
fi
dir=${1:-.gpu-wheels}
tag="cp${pyver//./}"
mkdir -p "$dir"

for name in "${CARRIED[@]}"; do
    version=$(sed -n "s/^${name}==\([^ ;#]*\).*/\1/p" constraints.txt)
    if [ -z "$version" ]; then
        echo "gpu_wheels: constraints.txt pins no version of $name" >&2
        exit 2
    fi
    file=${name//-/_}  # a wheel's file name spells the distribution with underscores
    kept=""
    for wheel in "$dir/$file"-*.whl; do
        [ -e "$wheel" ] || continue
        case "$wheel" in
            "$dir/$file-$version-py3-none-any.whl" | "$dir/$file-$version-$tag-$tag-"*) kept=$wheel ;;
            *) rm -f "$wheel" ;;  # another version or Python: two versions would stop the whole install
        esac
    done
    if [ -n "$kept" ]; then
        echo "gpu_wheels: $(basename "$kept") already there"
        continue
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
        --abi "$tag" --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --platform any -d "$dir" "$name==$version"
    echo "gpu_wheels: $name $version downloaded"
done
