// Shim for the emulated build only (its include path puts this folder first):
// <cuda_runtime_api.h> is the emulated runtime API.
#pragma once
#include "cuda/emulation/runtime.h"
