// Shim for the emulated build only (its include path puts this folder first):
// <cuda_runtime.h> is the SIMT emulation's device side plus its runtime API.
// Also force-included into every .cu file of that build, as nvcc does.
#pragma once
#include "cuda/emulation/simt.h"
