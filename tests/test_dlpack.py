"""DLPack interchange: Tensor.__dlpack__ / __dlpack_device__, tfg.from_dlpack and
the C++ capsule handling under them (_C.to_dlpack, _C.from_dlpack), against
NumPy and, when it is installed, PyTorch."""
import gc
import sys
import weakref

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C

TFG_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8]
ALL_DTYPES = TFG_DTYPES + [np.float16, np.int8, np.int16, np.uint16, np.uint32, np.uint64,
                           np.complex64, np.complex128]


def sample(dtype, shape=(3, 4)):
    values = np.arange(int(np.prod(shape))).reshape(shape)
    if dtype == np.bool_:
        return values % 3 == 0
    return values.astype(dtype)


class Producer:
    """A minimal foreign producer: exports an array through the protocol."""

    def __init__(self, array, versioned=True):
        self.array = array
        self.versioned = versioned

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        return _C.to_dlpack(self.array, self.versioned and max_version is not None)

    def __dlpack_device__(self):
        return (1, 0)


class LegacyProducer:
    """A producer from before DLPack 1.0: __dlpack__ takes no max_version."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, stream=None):
        return _C.to_dlpack(self.array, False)

    def __dlpack_device__(self):
        return (1, 0)


# ------------------------------------------------------------- with NumPy
def test_numpy_from_tensor_shares_memory():
    t = tfg.arange(12, dtype=tfg.float32).reshape(3, 4)
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t._data)
    np.testing.assert_array_equal(a, t._data)
    a[1, 2] = -7.0
    assert t[1, 2].item() == -7.0
    t._data[0, 0] = 42.0
    assert a[0, 0] == 42.0


def test_tensor_from_numpy_shares_memory():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = tfg.from_dlpack(a)
    assert isinstance(t, tfg.Tensor)
    assert t.dtype == tfg.float64 and t.shape == (2, 3)
    assert np.shares_memory(t._data, a)
    a[1, 1] = 100.0
    assert t[1, 1].item() == 100.0
    t._data[0, 2] = -1.0
    assert a[0, 2] == -1.0


def test_dlpack_device():
    t = tfg.zeros(2)
    assert t.__dlpack_device__() == (1, 0)
    assert tfg.interop.dlpack_device(t)[0] == tfg.interop.DLDeviceType.kDLCPU


@pytest.mark.parametrize("view", [
    lambda a: a.T,
    lambda a: a[:, ::2],
    lambda a: a[::-1, 1:],
    lambda a: a[1:, 2],
    lambda a: a[None, :, None, 1:3],
    lambda a: a.reshape(2, 3, 2).transpose(2, 0, 1),
], ids=["transpose", "step", "negative-step", "column", "new-axes", "permute"])
def test_views_round_trip(view):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    src = view(base)
    out = tfg.from_dlpack(src)
    assert out.shape == src.shape
    assert out._data.strides == src.strides
    assert np.shares_memory(out._data, base)
    np.testing.assert_array_equal(out._data, src)
    back = np.from_dlpack(tfg.from_dlpack(src))
    assert back.strides == src.strides and np.shares_memory(back, base)
    np.testing.assert_array_equal(back, src)


def test_tensor_views_export():
    t = tfg.arange(24, dtype=tfg.float64).reshape(2, 3, 4)
    for view in (t.transpose(0, 2), t[:, 1], t[..., ::2], t.permute(2, 0, 1)):
        a = np.from_dlpack(view)
        np.testing.assert_array_equal(a, view._data)
        assert np.shares_memory(a, t._data)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1,)])
def test_zero_dim_and_empty(shape):
    src = np.full(shape, 2.5, dtype=np.float32)
    out = tfg.from_dlpack(src)
    assert out.shape == shape and out.dtype == tfg.float32
    back = np.from_dlpack(out)
    assert back.shape == shape
    np.testing.assert_array_equal(back, src)
    if shape == ():
        assert out.item() == 2.5


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "legacy"])
def test_capsule_dtypes(dtype, versioned):
    src = sample(dtype)
    capsule = _C.to_dlpack(src, versioned)
    out = _C.from_dlpack(capsule)
    assert out.dtype == src.dtype
    assert np.shares_memory(out, src)
    np.testing.assert_array_equal(out, src)


@pytest.mark.parametrize("dtype", TFG_DTYPES, ids=lambda d: np.dtype(d).name)
def test_tensor_dtypes(dtype):
    src = sample(dtype)
    t = tfg.from_dlpack(src)
    assert t.dtype.numpy == src.dtype
    back = np.from_dlpack(t)
    assert back.dtype == src.dtype and np.shares_memory(back, src)


def test_unsupported_tensor_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="int16"):
        tfg.from_dlpack(sample(np.int16))


def test_capsule_names_versioned_and_legacy():
    t = tfg.ones(3)
    assert "dltensor_versioned" in repr(t.__dlpack__(max_version=(1, 0)))
    assert "dltensor_versioned" in repr(t.__dlpack__(max_version=(1, 3)))
    legacy = t.__dlpack__()
    assert '"dltensor"' in repr(legacy)
    assert '"dltensor"' in repr(t.__dlpack__(max_version=(0, 8)))
    out = tfg.from_dlpack(legacy)
    assert '"used_dltensor"' in repr(legacy)
    assert np.shares_memory(out._data, t._data)


def test_legacy_producer_without_max_version():
    a = np.arange(4, dtype=np.int64)
    t = tfg.from_dlpack(LegacyProducer(a))
    assert np.shares_memory(t._data, a)


def test_consumed_capsule_is_an_error():
    capsule = tfg.arange(3).__dlpack__(max_version=(1, 0))
    tfg.from_dlpack(capsule)
    assert "used_dltensor_versioned" in repr(capsule)
    with pytest.raises(ValueError, match="already consumed"):
        tfg.from_dlpack(capsule)


def test_not_a_capsule():
    with pytest.raises(TypeError, match="from_dlpack"):
        tfg.from_dlpack([1, 2, 3])
    with pytest.raises(TypeError, match="NumPy array"):
        _C.to_dlpack([1.0], True)
    with pytest.raises(TypeError, match="PyCapsule"):
        _C.from_dlpack(object())


def test_export_arguments():
    t = tfg.arange(4, dtype=tfg.float32)
    with pytest.raises(ValueError, match="stream"):
        t.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="device"):
        t.__dlpack__(max_version=(1, 0), dl_device=(2, 0))
    out = tfg.from_dlpack(t.__dlpack__(max_version=(1, 0), dl_device=(1, 0)))
    assert np.shares_memory(out._data, t._data)
    with pytest.raises(TypeError, match="max_version"):
        t.__dlpack__(max_version="1.0")
    with pytest.raises(RuntimeError, match="requires grad"):
        tfg.ones(2, requires_grad=True).__dlpack__()
    np.testing.assert_array_equal(np.from_dlpack(tfg.ones(2, requires_grad=True).detach()), [1, 1])


def test_copy_argument():
    t = tfg.arange(6, dtype=tfg.float32).reshape(2, 3)
    copied = tfg.from_dlpack(t.__dlpack__(max_version=(1, 0), copy=True))
    assert not np.shares_memory(copied._data, t._data)
    np.testing.assert_array_equal(copied._data, t._data)
    shared = tfg.from_dlpack(t.__dlpack__(max_version=(1, 0), copy=False))
    assert np.shares_memory(shared._data, t._data)
    np_copy = np.from_dlpack(t, copy=True)
    assert not np.shares_memory(np_copy, t._data)


def test_read_only_source():
    a = np.arange(4, dtype=np.float32)
    a.flags.writeable = False
    t = tfg.from_dlpack(a)
    assert np.shares_memory(t._data, a)
    assert not t._data.flags.writeable
    with pytest.raises(ValueError):
        t._data[0] = 1.0
    # The read-only flag survives a second exchange.
    back = np.from_dlpack(t)
    assert not back.flags.writeable and np.shares_memory(back, a)
    # A legacy capsule cannot carry the flag: a copy unless copy=False forbids it.
    legacy = tfg.from_dlpack(t.__dlpack__())
    assert not np.shares_memory(legacy._data, a) and legacy._data.flags.writeable
    with pytest.raises(BufferError, match="read-only"):
        t.__dlpack__(copy=False)
    with pytest.raises(BufferError, match="read-only"):
        _C.to_dlpack(a, False)


def test_byte_offset_and_misaligned_strides():
    raw = np.zeros(20, dtype=np.uint8)
    odd = raw[1:17].view(np.int32)  # data at an odd address: fine, strides are whole elements
    odd[:] = [1, 2, 3, 4]
    np.testing.assert_array_equal(_C.from_dlpack(_C.to_dlpack(odd, True)), [1, 2, 3, 4])
    packed = np.zeros(5, dtype=[("a", np.uint8), ("b", np.int32)])["b"]  # 5-byte strides
    with pytest.raises(BufferError, match="stride"):
        _C.to_dlpack(packed, True)


def test_unsupported_numpy_dtype_export():
    with pytest.raises(BufferError, match="dtype"):
        _C.to_dlpack(np.array(["a", "b"]), True)
    with pytest.raises(BufferError, match="byte order"):
        _C.to_dlpack(np.arange(3, dtype=">f4"), True)


# ----------------------------------------------------------------- lifetime
def test_producer_deleted_before_consumer():
    producer = Producer(np.arange(1000, dtype=np.float64))
    producer_ref, array_ref = weakref.ref(producer), weakref.ref(producer.array)
    t = tfg.from_dlpack(producer)
    del producer
    gc.collect()
    assert producer_ref() is None and array_ref() is not None
    np.testing.assert_array_equal(t._data, np.arange(1000))


def test_memory_released_after_consumer_dies():
    a = np.arange(16, dtype=np.float32)
    ref = weakref.ref(a)
    t = tfg.from_dlpack(a)
    del a
    gc.collect()
    assert ref() is not None  # the tensor's managed context still holds the array
    np.testing.assert_array_equal(t._data, np.arange(16))
    del t
    gc.collect()
    assert ref() is None


def test_unconsumed_capsule_releases_its_array():
    a = np.arange(4, dtype=np.float32)
    before = sys.getrefcount(a)
    capsule = _C.to_dlpack(a, True)
    assert sys.getrefcount(a) == before + 1
    del capsule
    assert sys.getrefcount(a) == before
    capsule = _C.to_dlpack(a, False)
    view = _C.from_dlpack(capsule)
    del capsule
    assert sys.getrefcount(a) == before + 1
    del view
    assert sys.getrefcount(a) == before


def test_tensor_outlives_exporting_tensor():
    t = tfg.arange(8, dtype=tfg.float32)
    a = np.from_dlpack(t)
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None
    np.testing.assert_array_equal(a, np.arange(8))


# ------------------------------------------------------------------ PyTorch
def test_torch_from_tensor():
    torch = pytest.importorskip("torch")
    t = tfg.arange(12, dtype=tfg.float32).reshape(3, 4)
    pt = torch.from_dlpack(t)
    assert pt.data_ptr() == t._data.ctypes.data
    pt[0, 1] = 9.0
    assert t[0, 1].item() == 9.0
    view = t.transpose(0, 1)[1:]
    pv = torch.from_dlpack(view)
    assert tuple(pv.stride()) == tuple(s // 4 for s in view._data.strides)
    np.testing.assert_array_equal(pv.numpy(), view._data)


def test_tensor_from_torch():
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.float64, torch.int32, torch.int64, torch.bool, torch.uint8):
        pt = (torch.arange(12) % 3).to(dtype).reshape(3, 4)
        t = tfg.from_dlpack(pt)
        assert t._data.ctypes.data == pt.data_ptr()
        np.testing.assert_array_equal(t._data, pt.numpy())
    pt = torch.arange(20, dtype=torch.float64).reshape(4, 5)[1:, ::2]
    t = tfg.from_dlpack(pt)
    np.testing.assert_array_equal(t._data, pt.numpy())
    pt[0, 0] = -3.0
    assert t[0, 0].item() == -3.0
    legacy = tfg.from_dlpack(torch.utils.dlpack.to_dlpack(pt))
    np.testing.assert_array_equal(legacy._data, pt.numpy())


def test_torch_lifetime():
    torch = pytest.importorskip("torch")
    pt = torch.arange(1000, dtype=torch.float32)
    t = tfg.from_dlpack(pt)
    del pt
    gc.collect()
    np.testing.assert_array_equal(t._data, np.arange(1000, dtype=np.float32))
    src = tfg.arange(5, dtype=tfg.int64)
    back = torch.from_dlpack(src)
    del src
    gc.collect()
    assert back.tolist() == [0, 1, 2, 3, 4]


def test_torch_zero_dim_and_empty():
    torch = pytest.importorskip("torch")
    for shape in ((), (0,), (2, 0)):
        pt = torch.zeros(shape)
        t = tfg.from_dlpack(pt)
        assert t.shape == shape
        assert tuple(torch.from_dlpack(t).shape) == shape


# ----------------------------------------------- capsules we must refuse
def _managed_fields(capsule):
    """The (version.major, device_type) fields of a versioned capsule, writable through ctypes."""
    import ctypes

    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, b"dltensor_versioned")
    # DLManagedTensorVersioned: version {u32 major, u32 minor}, manager_ctx, deleter, flags, then
    # DLTensor {data, device {i32 type, i32 id}, ...}.
    major = ctypes.c_uint32.from_address(address)
    device_type = ctypes.c_int32.from_address(address + 8 * 4 + 8)
    return major, device_type


def test_newer_major_version_is_refused_without_consuming():
    a = np.arange(3, dtype=np.float32)
    capsule = _C.to_dlpack(a, True)
    major, _ = _managed_fields(capsule)
    major.value = 2
    with pytest.raises(BufferError, match="version 2.0"):
        tfg.from_dlpack(capsule)
    assert '"dltensor_versioned"' in repr(capsule)
    major.value = 1
    np.testing.assert_array_equal(tfg.from_dlpack(capsule)._data, a)


def test_other_devices_are_refused():
    capsule = _C.to_dlpack(np.zeros(2, np.float32), True)
    _, device_type = _managed_fields(capsule)
    device_type.value = 2
    with pytest.raises(BufferError, match=r"device type 2 \(CUDA\) is not supported by this build"):
        tfg.from_dlpack(capsule)
    assert '"dltensor_versioned"' in repr(capsule)
    device_type.value = 1
    del capsule
    gc.collect()
