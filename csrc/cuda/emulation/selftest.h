// Test-only kernels of the SIMT emulation (selftest.cu), compiled only into
// the emulated build and run from tests/test_cuda_emulation.py through
// _C._simt_selftest. Each test uploads `input`, launches its kernel with the
// given configuration and returns the kernel's output as doubles.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <vector>

namespace tfg::simt::selftest {

std::vector<double> run(const std::string& name, const std::vector<double>& input, dim3 grid, dim3 block,
                        size_t smem_bytes);
std::vector<std::string> names();

}  // namespace tfg::simt::selftest
