# CUDA part of the build (placeholder until the CUDA plumbing lands):
# tfg_add_cuda(target) adds the CUDA sources, or the stub that reports "not built".
function(tfg_add_cuda target)
  target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/csrc/cuda/cuda_stub.cpp)
endfunction()
