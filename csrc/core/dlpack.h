// The DLPack 1.0 C ABI (https://dmlc.github.io/dlpack/latest/c_api.html),
// declared here from the specification: the tensor descriptor, the legacy and
// the versioned managed tensors, and the PyCapsule names of the Python
// exchange protocol. Layouts must match the specification field for field.
#pragma once
#include <cstdint>

namespace tfg::dlpack {

inline constexpr uint32_t kMajorVersion = 1;
inline constexpr uint32_t kMinorVersion = 0;

// Capsule names: a producer names a fresh capsule kCapsule*, a consumer
// renames it kUsedCapsule* when it takes ownership of the managed tensor.
inline constexpr const char* kCapsuleLegacy = "dltensor";
inline constexpr const char* kCapsuleVersioned = "dltensor_versioned";
inline constexpr const char* kUsedCapsuleLegacy = "used_dltensor";
inline constexpr const char* kUsedCapsuleVersioned = "used_dltensor_versioned";

// Bits of DLManagedTensorVersioned::flags.
inline constexpr uint64_t kFlagReadOnly = uint64_t{1} << 0;
inline constexpr uint64_t kFlagIsCopied = uint64_t{1} << 1;
inline constexpr uint64_t kFlagIsSubbyteTypePadded = uint64_t{1} << 2;

extern "C" {

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

enum DLDeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17,
};

struct DLDevice {
  DLDeviceType device_type;
  int32_t device_id;
};

enum DLDataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

struct DLDataType {
  uint8_t code;   // a DLDataTypeCode
  uint8_t bits;   // bits per lane
  uint16_t lanes; // 1 for scalar element types
};

// shape and strides count elements, not bytes; strides == nullptr means the
// tensor is compact and row-major. The first element lies at
// static_cast<char*>(data) + byte_offset.
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};

// Pre-1.0 managed tensor (capsule "dltensor"); it carries no version or flags.
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// DLPack >= 1.0 managed tensor (capsule "dltensor_versioned"). A consumer
// must check version.major before reading anything past it.
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // extern "C"

// Human-readable name of a device type, for error messages.
inline const char* device_type_name(int32_t type) {
  switch (type) {
    case kDLCPU: return "CPU";
    case kDLCUDA: return "CUDA";
    case kDLCUDAHost: return "CUDAHost";
    case kDLOpenCL: return "OpenCL";
    case kDLVulkan: return "Vulkan";
    case kDLMetal: return "Metal";
    case kDLVPI: return "VPI";
    case kDLROCM: return "ROCm";
    case kDLROCMHost: return "ROCmHost";
    case kDLExtDev: return "ExtDev";
    case kDLCUDAManaged: return "CUDAManaged";
    case kDLOneAPI: return "OneAPI";
    case kDLWebGPU: return "WebGPU";
    case kDLHexagon: return "Hexagon";
    case kDLMAIA: return "MAIA";
    default: return "unknown";
  }
}

}  // namespace tfg::dlpack
