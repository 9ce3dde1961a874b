#!/usr/bin/env bash
# The emulated CUDA kernels under AddressSanitizer (csrc/cuda/emulation/README.md):
# builds the emulated module with -fsanitize=address into build/emulated-asan,
# runs tests/test_cuda_emulation.py with the ASan runtime preloaded into Python,
# then checks that a planted one-element overrun of an emulated cudaMalloc
# buffer (selftest "planted_overrun") is reported as a heap-buffer-overflow.
# Slow (the whole module is instrumented); not part of CI. GCC or Clang.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/emulated-asan
python=${PYTHON:-python3}
cxx=${CXX:-c++}
libasan=$("$cxx" -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "asan_emulation.sh: no libasan.so for $cxx" >&2; exit 2; }
# libstdc++ preloaded too: ASan's __cxa_throw interceptor must find the real
# one at startup, before Python loads the module (else a CHECK fails at the
# first C++ exception).
preload="$libasan $("$cxx" -print-file-name=libstdc++.so)"

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:detect_stack_use_after_return=0
flags="-fsanitize=address -fno-omit-frame-pointer"
TFG_TEST_PRELOAD="$preload" tools/test_emulated.sh "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
  "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address" \
  "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address"

echo "--- planted overrun: AddressSanitizer must report it"
log=$(mktemp)
if PYTHONPATH="$build/pkg" LD_PRELOAD="$preload" "$python" -c \
    "from tensorforge import _C; _C._simt_selftest('planted_overrun', [1.0] * 64, 2, 32)" 2>"$log"; then
  echo "FAIL: the overrun ran without a report"; exit 1
fi
if grep -q "heap-buffer-overflow" "$log" && grep -q "planted_overrun" "$log"; then
  grep -m1 "ERROR: AddressSanitizer" "$log"
  grep -m1 -E "#[0-9]+ .*planted_overrun" "$log"
  echo "OK: the overrun was reported"
else
  cat "$log"; echo "FAIL: no heap-buffer-overflow report naming planted_overrun"; exit 1
fi
