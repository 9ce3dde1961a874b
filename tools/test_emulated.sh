#!/usr/bin/env bash
# Builds the emulated CUDA test module (TENSORFORGE_CUDA_EMULATION=ON: the
# CUDA kernels compiled by the host compiler, run on the CPU; see
# csrc/cuda/emulation/README.md) into its own build folder, assembles a
# package folder (python/tensorforge plus that module) and runs
# every tests/test_cuda_*.py (the CUDA kernels and the emulator) against it.
#
#   tools/test_emulated.sh [BUILD_DIR [CMAKE_ARGS...]]
#
# BUILD_DIR defaults to build/emulated; CMAKE_ARGS are passed to the
# configure step (tools/asan_emulation.sh adds sanitizer flags there).
# PYTEST_ARGS (environment) replaces the default pytest arguments (-q);
# TFG_TEST_PRELOAD, when set, is the LD_PRELOAD of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/emulated}
shift || true
python=${PYTHON:-python3}

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
has_build_type=0
for arg in "$@"; do [[ $arg == -DCMAKE_BUILD_TYPE=* ]] && has_build_type=1; done
build_type=()
if [ "$has_build_type" = 0 ]; then build_type=(-DCMAKE_BUILD_TYPE=Release); fi

nice -n 19 cmake -S . -B "$build" "${generator[@]}" "${build_type[@]}" -DTENSORFORGE_CUDA=OFF \
  -DTENSORFORGE_CUDA_EMULATION=ON -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" "$@" >/dev/null
nice -n 19 cmake --build "$build" -j "$(nproc)"

pkg="$build/pkg"
rm -rf "$pkg"
mkdir -p "$pkg"
cp -R python/tensorforge "$pkg/"
rm -rf "$pkg"/tensorforge/_C*.so "$pkg"/tensorforge/__pycache__ "$pkg"/tensorforge/*/__pycache__
cp "$build"/_C*.so "$pkg/tensorforge/"

run=()
if [ -n "${TFG_TEST_PRELOAD:-}" ]; then run=(env "LD_PRELOAD=$TFG_TEST_PRELOAD"); fi
# The tests skip themselves without the emulated module: make sure it is the one imported.
PYTHONPATH="$pkg" ${run[@]+"${run[@]}"} "$python" -c "import sys, tensorforge as t
sys.exit(0 if t.cuda.is_emulated() else 'not the emulated tensorforge: ' + t.__file__)"

read -r -a pytest_args <<<"${PYTEST_ARGS:--q}"
PYTHONPATH="$pkg" ${run[@]+"${run[@]}"} "$python" -m pytest -p no:cacheprovider tests/test_cuda_*.py \
  "${pytest_args[@]}"
