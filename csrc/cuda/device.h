// Device-side helpers whose spelling differs between nvcc and the SIMT
// emulation (emulation/README.md). Include from .cu files.
//
// TFG_DYNAMIC_SHARED(T, name) declares `T* name`, the block's dynamic shared
// memory (the smem_bytes of the launch), 128-byte aligned. Under nvcc it is
// `extern __shared__`, which the emulation cannot express (its __shared__ is
// static thread_local, and `extern thread_local` arrays are per OS thread, not
// per block).
#pragma once

#if defined(TFG_CUDA_EMULATION)
#define TFG_DYNAMIC_SHARED(T, name) TFG_SIMT_DYNAMIC_SHARED(T, name)
#else
#define TFG_DYNAMIC_SHARED(T, name)                                        \
  extern __shared__ __align__(128) unsigned char tfg_dynamic_shared_[];    \
  T* name = reinterpret_cast<T*>(tfg_dynamic_shared_)
#endif
