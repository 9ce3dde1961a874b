# CUDA part of the build (spec/design.md section 4, "CUDA without a GPU").
#
# TENSORFORGE_CUDA (declared in CMakeLists.txt) chooses it:
#   AUTO  build the CUDA backend when CMake finds nvcc, else the stub (default)
#   ON    build it; stop with an error when nvcc cannot be found
#   OFF   only the stub, whose cuda_status() says "not built"
# With CUDA, nvcc compiles csrc/ops/*/cuda/*.cu for an explicit list of
# architectures (CMAKE_CUDA_ARCHITECTURES, default 80-real;90, never "all"),
# ptxas prints registers, shared memory and spills of every kernel into the
# build log, and the module links the static CUDA runtime, so that it imports
# (and reports "not available" with the runtime's reason) on machines without
# a driver, a GPU or a toolkit.
#
# TENSORFORGE_CUDA_EMULATION=ON is the test build of design.md section 4: the
# same csrc/ops/*/cuda/*.cu files are compiled by the host C++ compiler against
# the SIMT emulation (csrc/cuda/emulation/README.md) and run on the CPU, with
# cuda_status() reporting one emulated device. It replaces nvcc (so it cannot
# be combined with TENSORFORGE_CUDA=ON), needs x86-64, and is never for wheels.
#
# This file is include()d at the top level after the _C target exists:
# compiler detection and enable_language(CUDA) run here, at file scope (as
# enable_language requires); tfg_add_cuda(target) then adds the sources.

option(TENSORFORGE_CUDA_WERROR "Make ptxas warnings (spills, local memory) errors" OFF)
option(TENSORFORGE_CUDA_EMULATION
  "Test build: compile the CUDA kernels with the host compiler and run them on the CPU (never for wheels)" OFF)

string(TOUPPER "${TENSORFORGE_CUDA}" _tfg_cuda_mode)
if(NOT _tfg_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR
    "TENSORFORGE_CUDA is '${TENSORFORGE_CUDA}', but it must be one of AUTO, ON, OFF:\n"
    "  AUTO  build the CUDA backend when nvcc is found (default)\n"
    "  ON    build the CUDA backend, fail when nvcc is not found\n"
    "  OFF   build without CUDA\n"
    "Set it with -DTENSORFORGE_CUDA=... (pip: the TENSORFORGE_CUDA environment "
    "variable or -C cmake.define.TENSORFORGE_CUDA=...).")
endif()

if(TENSORFORGE_CUDA_EMULATION)
  if(_tfg_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR
      "TENSORFORGE_CUDA_EMULATION=ON compiles the CUDA kernels with the host compiler instead of "
      "nvcc, so it cannot be combined with TENSORFORGE_CUDA=ON; set TENSORFORGE_CUDA=OFF or AUTO.")
  endif()
  if(DEFINED SKBUILD)
    message(FATAL_ERROR
      "TENSORFORGE_CUDA_EMULATION=ON is a test build (csrc/cuda/emulation/README.md), not for wheels; "
      "configure it with cmake directly.")
  endif()
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    message(FATAL_ERROR "TENSORFORGE_CUDA_EMULATION=ON needs x86-64 (its fiber context switch is "
                        "x86-64 assembly); this is ${CMAKE_SYSTEM_PROCESSOR}.")
  endif()
  set(_tfg_cuda_mode OFF)
endif()

set(TFG_CUDA_ENABLED OFF)
if(NOT _tfg_cuda_mode STREQUAL "OFF")
  set(_tfg_nvcc_problem "")
  # A NOTFOUND left in the cache by an earlier run is forgotten, so that AUTO
  # picks up a toolkit installed since (check_language skips any defined value).
  if(DEFINED CMAKE_CUDA_COMPILER AND NOT CMAKE_CUDA_COMPILER)
    unset(CMAKE_CUDA_COMPILER CACHE)
    unset(CMAKE_CUDA_COMPILER)
  endif()
  if(DEFINED CMAKE_CUDA_COMPILER)
    # Named by the user (or cached): check_language() would take it unchecked
    # and enable_language() would fail with CMake's own message.
    if(IS_ABSOLUTE "${CMAKE_CUDA_COMPILER}")
      if(NOT EXISTS "${CMAKE_CUDA_COMPILER}" OR IS_DIRECTORY "${CMAKE_CUDA_COMPILER}")
        set(_tfg_nvcc_problem "CMAKE_CUDA_COMPILER is '${CMAKE_CUDA_COMPILER}', which does not exist")
      endif()
    else()
      find_program(_tfg_nvcc_path NAMES "${CMAKE_CUDA_COMPILER}" NO_CACHE)
      if(NOT _tfg_nvcc_path)
        set(_tfg_nvcc_problem "CMAKE_CUDA_COMPILER is '${CMAKE_CUDA_COMPILER}', which is not on PATH")
      endif()
    endif()
  else()
    include(CheckLanguage)
    check_language(CUDA)
    if(NOT CMAKE_CUDA_COMPILER)
      if(DEFINED ENV{CUDACXX})
        set(_tfg_nvcc_problem "the CUDACXX environment variable is '$ENV{CUDACXX}', which is not a working nvcc")
      else()
        set(_tfg_nvcc_problem "no nvcc on PATH, CUDACXX unset, CMAKE_CUDA_COMPILER unset")
      endif()
    endif()
  endif()

  if(_tfg_nvcc_problem STREQUAL "")
    set(TFG_CUDA_ENABLED ON)
  elseif(_tfg_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR
      "TENSORFORGE_CUDA=ON, but the CUDA compiler (nvcc) was not found: ${_tfg_nvcc_problem}.\n"
      "Point CMake at nvcc with -DCMAKE_CUDA_COMPILER=/path/to/nvcc or the CUDACXX "
      "environment variable (for example /usr/local/cuda/bin/nvcc), or put the CUDA "
      "toolkit's bin directory on PATH; with pip use "
      "-C cmake.define.CMAKE_CUDA_COMPILER=/path/to/nvcc or CUDACXX.\n"
      "To build without CUDA use TENSORFORGE_CUDA=OFF, or AUTO (the default) to use "
      "CUDA only when nvcc is found. When nvcc exists but failed CMake's test, "
      "CMakeFiles/CMakeConfigureLog.yaml in the build directory says why.")
  else()
    message(STATUS "tensorforge: CUDA compiler not found (${_tfg_nvcc_problem}); "
                   "building without CUDA (TENSORFORGE_CUDA=AUTO)")
  endif()
endif()

if(TFG_CUDA_ENABLED)
  # Explicit architectures, set before enable_language() so that CMake does
  # not pick the compiler's default; -DCMAKE_CUDA_ARCHITECTURES=... or the
  # CUDAARCHS environment variable override it. 80-real: SASS for A100-class
  # GPUs; 90: SASS for H100 plus compute_90 PTX for later GPUs. Each entry
  # is another device compilation of every kernel, so keep the list short.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES "80-real;90" CACHE STRING
        "CUDA architectures to compile for (an explicit list, not 'all')")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  if(CMAKE_CUDA_ARCHITECTURES MATCHES "^(all|all-major)$")
    message(WARNING "CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES}: every architecture "
                    "multiplies the CUDA compile time, and some CMake versions expand it to "
                    "architectures this nvcc rejects; prefer an explicit list such as 80-real;90")
  endif()
  message(STATUS "tensorforge: CUDA ${CUDAToolkit_VERSION} (${CMAKE_CUDA_COMPILER}), "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, static CUDA runtime")
elseif(TENSORFORGE_CUDA_EMULATION)
  message(STATUS "tensorforge: CUDA emulation (test build): the CUDA kernels are compiled by "
                 "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} and run on the CPU")
elseif(_tfg_cuda_mode STREQUAL "OFF")
  message(STATUS "tensorforge: building without CUDA (TENSORFORGE_CUDA=OFF)")
endif()

# The emulated build: kernels (and the emulation's own test kernels) compiled
# as C++ with the shim folder first on the include path, so that
# <cuda_runtime.h> and <cuda_runtime_api.h> are the emulation's; the shim
# cuda_runtime.h is also force-included into every .cu file, as nvcc does.
function(_tfg_add_cuda_emulation target)
  set(_emu ${PROJECT_SOURCE_DIR}/csrc/cuda/emulation)
  file(GLOB _tfg_cuda_kernels CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/ops/*/cuda/*.cu)
  file(GLOB _tfg_cuda_bindings CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/bindings/bind_cuda_*.cpp)
  set(_cu ${_tfg_cuda_kernels} ${_emu}/selftest.cu)
  # LANGUAGE CXX compiles them as C++ (-x c++, policy CMP0119).
  set_source_files_properties(${_cu} PROPERTIES
    LANGUAGE CXX
    COMPILE_OPTIONS "-include;${_emu}/include/cuda_runtime.h;-Wno-unknown-pragmas")
  add_library(tfg_cuda_emulated OBJECT ${_cu} ${_emu}/simt.cpp ${_emu}/runtime.cpp)
  target_include_directories(tfg_cuda_emulated BEFORE PRIVATE ${_emu}/include ${PROJECT_SOURCE_DIR}/csrc)
  target_compile_definitions(tfg_cuda_emulated PRIVATE TFG_WITH_CUDA=1 TFG_CUDA_EMULATION=1)
  target_compile_options(tfg_cuda_emulated PRIVATE -O2)
  set_target_properties(tfg_cuda_emulated PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET OpenMP::OpenMP_CXX)
    target_link_libraries(tfg_cuda_emulated PRIVATE OpenMP::OpenMP_CXX)
  endif()
  target_sources(${target} PRIVATE
    $<TARGET_OBJECTS:tfg_cuda_emulated>
    ${PROJECT_SOURCE_DIR}/csrc/cuda/cuda_status.cpp
    ${_tfg_cuda_bindings}
    ${_emu}/bind_simt_selftest.cpp)
  target_include_directories(${target} BEFORE PRIVATE ${_emu}/include)
  target_compile_definitions(${target} PRIVATE TFG_WITH_CUDA=1 TFG_CUDA_EMULATION=1)
endfunction()

# tfg_add_cuda(target): the CUDA kernels, their bindings, the runtime status
# query and the static CUDA runtime; under TENSORFORGE_CUDA_EMULATION the same
# on the emulation; without CUDA the stub that reports "not built".
function(tfg_add_cuda target)
  if(TENSORFORGE_CUDA_EMULATION)
    _tfg_add_cuda_emulation(${target})
    return()
  endif()
  if(NOT TFG_CUDA_ENABLED)
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/csrc/cuda/cuda_stub.cpp)
    return()
  endif()

  # Kernels get their own object library so that the CXX-only options of the
  # module (-flto from pybind11, warning flags) never reach nvcc.
  file(GLOB _tfg_cuda_kernels CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/ops/*/cuda/*.cu)
  add_library(tfg_cuda_kernels OBJECT ${_tfg_cuda_kernels})
  target_include_directories(tfg_cuda_kernels PRIVATE ${PROJECT_SOURCE_DIR}/csrc)
  target_compile_definitions(tfg_cuda_kernels PRIVATE TFG_WITH_CUDA=1)
  set_target_properties(tfg_cuda_kernels PROPERTIES
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    CUDA_EXTENSIONS OFF
    CUDA_SEPARABLE_COMPILATION OFF
    CUDA_VISIBILITY_PRESET hidden
    POSITION_INDEPENDENT_CODE ON)
  # Resource report (registers, smem, spill stores/loads) per kernel and
  # architecture in the build log; spills and local memory also warn.
  target_compile_options(tfg_cuda_kernels PRIVATE
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-warn-spills,-warn-lmem-usage>"
    "$<$<COMPILE_LANGUAGE:CUDA>:--ptxas-options=-v>")
  if(TENSORFORGE_CUDA_WERROR)
    target_compile_options(tfg_cuda_kernels PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-Werror>")
  endif()
  target_link_libraries(tfg_cuda_kernels PRIVATE CUDA::cudart_static)  # headers only

  file(GLOB _tfg_cuda_bindings CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/bindings/bind_cuda_*.cpp)
  target_sources(${target} PRIVATE
    $<TARGET_OBJECTS:tfg_cuda_kernels>
    ${PROJECT_SOURCE_DIR}/csrc/cuda/cuda_status.cpp
    ${_tfg_cuda_bindings})
  target_compile_definitions(${target} PRIVATE TFG_WITH_CUDA=1)
  # The runtime comes linked in, never as libcudart.so: the module needs no
  # toolkit at run time, and without libcuda (no driver) the runtime's calls
  # return cudaErrorInsufficientDriver instead of the import failing.
  set_target_properties(${target} PROPERTIES CUDA_RUNTIME_LIBRARY None)
  target_link_libraries(${target} PRIVATE CUDA::cudart_static)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Keep the runtime's symbols private to the module.
    target_link_options(${target} PRIVATE "LINKER:--exclude-libs,libcudart_static.a")
  endif()
endfunction()
