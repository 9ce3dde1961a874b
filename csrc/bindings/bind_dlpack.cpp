// DLPack exchange of CPU memory with NumPy arrays, both ways and without
// copies: _C.to_dlpack wraps an array in a "dltensor_versioned" or "dltensor"
// capsule, _C.from_dlpack views a capsule's memory as an array. The Python
// protocol (__dlpack__, copies, devices) lives in tensorforge/interop.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dlpack.h"
#include "core/error.h"

namespace py = pybind11;

namespace tfg::bindings {

namespace {

using namespace tfg::dlpack;

static_assert(sizeof(DLDevice) == 8 && sizeof(DLDataType) == 4, "DLPack layout");
static_assert(sizeof(void*) != 8 || sizeof(DLTensor) == 48, "DLPack layout");
static_assert(sizeof(void*) != 8 || sizeof(DLManagedTensor) == 64, "DLPack layout");
static_assert(sizeof(void*) != 8 || sizeof(DLManagedTensorVersioned) == 80, "DLPack layout");

std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__"));
}

// ---- export -----------------------------------------------------------------

// Owns everything an exported capsule points into: a reference to the NumPy
// array (keeping its memory alive), the element shape and strides, and the
// managed tensor itself; the producer-side deleter frees it.
struct ExportContext {
  PyObject* array = nullptr;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  DLManagedTensor legacy{};
  DLManagedTensorVersioned versioned{};
};

// Consumers may call the deleter from any thread, with or without the GIL.
void release_export(ExportContext* ctx) {
  if (ctx->array != nullptr && Py_IsInitialized()) {
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_DECREF(ctx->array);
    PyGILState_Release(gil);
  }
  delete ctx;
}

void delete_legacy_export(DLManagedTensor* self) {
  release_export(static_cast<ExportContext*>(self->manager_ctx));
}

void delete_versioned_export(DLManagedTensorVersioned* self) {
  release_export(static_cast<ExportContext*>(self->manager_ctx));
}

// Runs when an exported capsule is garbage collected: a capsule still under
// its original name was never consumed, so the managed tensor is ours to free.
void exported_capsule_destructor(PyObject* capsule) {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  if (PyCapsule_IsValid(capsule, kCapsuleVersioned)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, kCapsuleVersioned));
    if (m->deleter != nullptr) m->deleter(m);
  } else if (PyCapsule_IsValid(capsule, kCapsuleLegacy)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleLegacy));
    if (m->deleter != nullptr) m->deleter(m);
  }
  PyErr_Restore(type, value, traceback);
}

bool dl_dtype_of(const py::dtype& dt, DLDataType* out) {
  const int bits = static_cast<int>(dt.itemsize()) * 8;
  out->bits = static_cast<uint8_t>(bits);
  out->lanes = 1;
  switch (dt.kind()) {
    case 'b': out->code = kDLBool; return bits == 8;
    case 'i': out->code = kDLInt; return bits == 8 || bits == 16 || bits == 32 || bits == 64;
    case 'u': out->code = kDLUInt; return bits == 8 || bits == 16 || bits == 32 || bits == 64;
    case 'f': out->code = kDLFloat; return bits == 16 || bits == 32 || bits == 64;
    case 'c': out->code = kDLComplex; return bits == 64 || bits == 128;
    default: return false;
  }
}

py::capsule to_dlpack(const py::handle& obj, bool versioned, bool copied) {
  if (!py::isinstance<py::array>(obj))
    throw TypeError(cat("to_dlpack: expected a NumPy array, got ", type_name(obj)));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = arr.dtype();
  const std::string dt_name = py::str(dt);
  DLDataType dl_dtype{};
  if (!dl_dtype_of(dt, &dl_dtype))
    throw py::buffer_error(cat("to_dlpack: dtype ", dt_name, " has no DLPack equivalent"));
  if (dt.byteorder() == '>')
    throw py::buffer_error(cat("to_dlpack: dtype ", dt_name,
                               " has non-native byte order, which DLPack cannot describe"));
  const bool read_only = !arr.writeable();
  if (read_only && !versioned)
    throw py::buffer_error(
        "to_dlpack: a read-only array cannot be exported as a legacy (pre-1.0) DLPack capsule, "
        "which has no read-only flag; request max_version=(1, 0) or copy=True");

  auto* ctx = new ExportContext();
  const py::ssize_t ndim = arr.ndim();
  const py::ssize_t item = dt.itemsize();
  ctx->shape.resize(ndim);
  ctx->strides.resize(ndim);
  int64_t contiguous_stride = 1;
  for (py::ssize_t i = ndim - 1; i >= 0; --i) {
    const py::ssize_t extent = arr.shape(i), byte_stride = arr.strides(i);
    ctx->shape[i] = extent;
    if (byte_stride % item == 0) {
      ctx->strides[i] = byte_stride / item;
    } else if (extent <= 1) {
      ctx->strides[i] = contiguous_stride;  // never stepped over, so any value is valid
    } else {
      delete ctx;
      throw py::buffer_error(cat("to_dlpack: axis ", i, " has a stride of ", byte_stride,
                                 " bytes, not a multiple of the ", item,
                                 "-byte element size; DLPack counts strides in elements"));
    }
    contiguous_stride *= extent > 0 ? extent : 1;
  }

  DLTensor tensor{};
  tensor.data = const_cast<void*>(arr.data());
  tensor.device = DLDevice{kDLCPU, 0};
  tensor.ndim = static_cast<int32_t>(ndim);
  tensor.dtype = dl_dtype;
  tensor.shape = ctx->shape.data();
  tensor.strides = ctx->strides.data();
  tensor.byte_offset = 0;

  void* managed;
  const char* name;
  if (versioned) {
    ctx->versioned.version = DLPackVersion{kMajorVersion, kMinorVersion};
    ctx->versioned.manager_ctx = ctx;
    ctx->versioned.deleter = delete_versioned_export;
    ctx->versioned.flags = (read_only ? kFlagReadOnly : 0) | (copied ? kFlagIsCopied : 0);
    ctx->versioned.dl_tensor = tensor;
    managed = &ctx->versioned;
    name = kCapsuleVersioned;
  } else {
    ctx->legacy.dl_tensor = tensor;
    ctx->legacy.manager_ctx = ctx;
    ctx->legacy.deleter = delete_legacy_export;
    managed = &ctx->legacy;
    name = kCapsuleLegacy;
  }
  PyObject* capsule = PyCapsule_New(managed, name, exported_capsule_destructor);
  if (capsule == nullptr) {
    delete ctx;
    throw py::error_already_set();
  }
  ctx->array = arr.inc_ref().ptr();
  return py::reinterpret_steal<py::capsule>(capsule);
}

// ---- import -----------------------------------------------------------------

// NumPy's name for a DLPack element type, or "" when NumPy has none.
std::string numpy_dtype_name(const DLDataType& t) {
  if (t.lanes != 1) return "";
  const int bits = t.bits;
  switch (t.code) {
    case kDLBool: return bits == 8 ? "bool" : "";
    case kDLInt:
      return bits == 8 || bits == 16 || bits == 32 || bits == 64 ? "int" + std::to_string(bits) : "";
    case kDLUInt:
      return bits == 8 || bits == 16 || bits == 32 || bits == 64 ? "uint" + std::to_string(bits) : "";
    case kDLFloat:
      return bits == 16 || bits == 32 || bits == 64 ? "float" + std::to_string(bits) : "";
    case kDLComplex:
      return bits == 64 || bits == 128 ? "complex" + std::to_string(bits) : "";
    default: return "";
  }
}

const char* dtype_code_name(uint8_t code) {
  switch (code) {
    case kDLInt: return "int";
    case kDLUInt: return "uint";
    case kDLFloat: return "float";
    case kDLOpaqueHandle: return "opaque handle";
    case kDLBfloat: return "bfloat";
    case kDLComplex: return "complex";
    case kDLBool: return "bool";
    default: return "unknown";
  }
}

// The consumer's owner of an imported managed tensor: the base object of the
// NumPy view, calling the producer's deleter when the view is freed.
void release_imported_legacy(void* p) {
  auto* m = static_cast<DLManagedTensor*>(p);
  if (m->deleter != nullptr) m->deleter(m);
}

void release_imported_versioned(void* p) {
  auto* m = static_cast<DLManagedTensorVersioned*>(p);
  if (m->deleter != nullptr) m->deleter(m);
}

py::array from_dlpack(const py::handle& obj) {
  if (!PyCapsule_CheckExact(obj.ptr()))
    throw TypeError(cat("from_dlpack: expected a DLPack PyCapsule or an object with __dlpack__, got ",
                        type_name(obj)));
  const char* raw_name = PyCapsule_GetName(obj.ptr());
  if (raw_name == nullptr && PyErr_Occurred()) throw py::error_already_set();
  const std::string name = raw_name != nullptr ? raw_name : "";
  if (name == kUsedCapsuleLegacy || name == kUsedCapsuleVersioned)
    throw ValueError(cat("from_dlpack: the DLPack capsule was already consumed (its name is '", name,
                         "'); a capsule can be imported only once"));
  const bool versioned = name == kCapsuleVersioned;
  if (!versioned && name != kCapsuleLegacy)
    throw TypeError(cat("from_dlpack: the capsule is not a DLPack tensor (its name is '", name,
                        "', expected '", kCapsuleVersioned, "' or '", kCapsuleLegacy, "')"));

  void* managed = PyCapsule_GetPointer(obj.ptr(), name.c_str());
  if (managed == nullptr) throw py::error_already_set();
  uint64_t flags = 0;
  const DLTensor* t;
  if (versioned) {
    auto* m = static_cast<DLManagedTensorVersioned*>(managed);
    if (m->version.major > kMajorVersion)
      throw py::buffer_error(cat("from_dlpack: DLPack version ", m->version.major, ".", m->version.minor,
                                 " is not supported (this build reads major version ", kMajorVersion,
                                 ")"));
    flags = m->flags;
    t = &m->dl_tensor;
  } else {
    t = &static_cast<DLManagedTensor*>(managed)->dl_tensor;
  }

  // Every check comes before the capsule is renamed: a capsule we refuse stays
  // unconsumed and its own destructor frees the tensor.
  const int32_t device_type = t->device.device_type;
  if (device_type != kDLCPU)
    throw py::buffer_error(cat("from_dlpack: device type ", device_type, " (",
                               device_type_name(device_type), ") is not supported by this build"));
  const std::string np_name = numpy_dtype_name(t->dtype);
  if (np_name.empty())
    throw py::buffer_error(cat("from_dlpack: DLPack dtype (code ", int(t->dtype.code), " = ",
                               dtype_code_name(t->dtype.code), ", bits ", int(t->dtype.bits), ", lanes ",
                               t->dtype.lanes, ") is not supported"));
  if (flags & kFlagIsSubbyteTypePadded)
    throw py::buffer_error("from_dlpack: padded sub-byte element types are not supported");
  if (t->ndim < 0 || (t->ndim > 0 && t->shape == nullptr))
    throw ValueError(cat("from_dlpack: malformed DLTensor (ndim ", t->ndim, ", shape pointer ",
                         t->shape == nullptr ? "null" : "set", ")"));

  const py::dtype dt(np_name);
  const py::ssize_t item = dt.itemsize();
  std::vector<py::ssize_t> shape(t->ndim), strides(t->ndim);
  int64_t size = 1;
  for (int32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] < 0)
      throw ValueError(cat("from_dlpack: malformed DLTensor (negative extent ", t->shape[i],
                           " on axis ", i, ")"));
    shape[i] = t->shape[i];
    size *= t->shape[i];
  }
  py::ssize_t contiguous = item;
  for (int32_t i = t->ndim - 1; i >= 0; --i) {
    strides[i] = t->strides != nullptr && size > 0 ? t->strides[i] * item : contiguous;
    contiguous *= shape[i] > 0 ? shape[i] : 1;
  }
  char* data = static_cast<char*>(t->data);
  if (data == nullptr && size > 0)
    throw ValueError(cat("from_dlpack: malformed DLTensor (null data pointer for ", size, " elements)"));
  if (data != nullptr) data += t->byte_offset;

  if (PyCapsule_SetName(obj.ptr(), versioned ? kUsedCapsuleVersioned : kUsedCapsuleLegacy) != 0)
    throw py::error_already_set();
  py::capsule owner;
  try {
    owner = versioned ? py::capsule(managed, release_imported_versioned)
                      : py::capsule(managed, release_imported_legacy);
  } catch (...) {
    versioned ? release_imported_versioned(managed) : release_imported_legacy(managed);
    throw;
  }
  // With size 0 the data pointer may be null; NumPy then allocates its own
  // (empty) buffer and the owner is dropped at once, releasing the tensor.
  py::array out(dt, shape, strides, size > 0 ? data : nullptr, owner);
  if (flags & kFlagReadOnly) out.attr("setflags")(py::arg("write") = false);
  return out;
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.def("to_dlpack", &to_dlpack, py::arg("array"), py::arg("versioned"), py::arg("copied") = false,
        "Exports a NumPy array, zero-copy, as a DLPack capsule: 'dltensor_versioned' (DLPack 1.0, "
        "with the read-only flag and, when `copied`, the is-copied flag) or legacy 'dltensor'. The "
        "capsule keeps the array alive until its consumer calls the deleter.");
  m.def("from_dlpack", &from_dlpack, py::arg("capsule"),
        "Views the CPU memory of a DLPack capsule as a NumPy array, zero-copy. The capsule is "
        "renamed 'used_dltensor(_versioned)'; its tensor is released when the array is freed.");
}

}  // namespace tfg::bindings
