"""tfg.save / tfg.load: round trips of state dicts and nested checkpoints in the
safetensors format, foreign safetensors files, and damaged files giving errors."""
import json
import math
import os
import struct

import numpy as np
import pytest
import safetensors.numpy

import tensorforge as tfg


def assert_same(loaded, original, where="<root>"):
    """Deep equality that also checks types, dtypes and shapes."""
    assert type(loaded) is type(original), where
    if isinstance(original, tfg.Tensor):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape, where
        assert loaded.requires_grad == original.requires_grad, where
        np.testing.assert_array_equal(loaded.detach()._data, original.detach()._data)
    elif isinstance(original, (np.ndarray, np.generic)):
        assert loaded.dtype == original.dtype and np.shape(loaded) == np.shape(original), where
        np.testing.assert_array_equal(loaded, original)
    elif isinstance(original, dict):
        assert list(loaded) == list(original), where
        for key in original:
            assert_same(loaded[key], original[key], f"{where}.{key}")
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original), where
        for i, (a, b) in enumerate(zip(loaded, original)):
            assert_same(a, b, f"{where}.{i}")
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(loaded), where
    else:
        assert loaded == original, where


def checkpoint():
    tfg.manual_seed(0)
    return {
        "model": {"fc.weight": tfg.randn(4, 3), "fc.bias": tfg.zeros(4),
                  "bn.num_batches_tracked": tfg.tensor(7)},
        "optimizer": {
            "state": {0: {"step": tfg.tensor(3.0), "exp_avg": tfg.randn(4, 3)},
                      1: {"step": tfg.tensor(3.0), "exp_avg": tfg.ones(4)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                              "amsgrad": False, "foreach": None, "params": [0, 1], "name": "all"}],
        },
        "epoch": 3,
        "best": float("inf"),
        "history": [0.5, float("nan"), -float("inf")],
    }


def test_flat_state_dict(tmp_path):
    tfg.manual_seed(1)
    state = {"layer.weight": tfg.randn(5, 2), "layer.bias": tfg.randn(5, dtype=tfg.float64)}
    path = tmp_path / "model.safetensors"
    tfg.save(state, path)
    assert_same(tfg.load(path), state)
    # A flat state dict is an ordinary safetensors file under its own names.
    plain = safetensors.numpy.load_file(str(path))
    assert sorted(plain) == ["layer.bias", "layer.weight"]
    np.testing.assert_array_equal(plain["layer.weight"], state["layer.weight"]._data)


def test_nested_checkpoint(tmp_path):
    obj = checkpoint()
    path = str(tmp_path / "ckpt.safetensors")
    tfg.save(obj, path)
    assert_same(tfg.load(path), obj)
    keys = set(safetensors.numpy.load_file(path))
    assert {"model.fc.weight", "optimizer.state.0.exp_avg", "optimizer.state.1.step"} <= keys


def test_leaves_and_containers(tmp_path):
    obj = [
        {"a": None, "b": True, "c": 0, "d": -2**70, "e": 2.5, "f": "text ✓", "g": ()},
        (np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(1.5), np.int64(-4), np.bool_(True)),
        tfg.ones(2, requires_grad=True),
        {},
        [],
        {1: "int key", "1": "str key"},
    ]
    path = tmp_path / "x.safetensors"
    tfg.save(obj, path)
    assert_same(tfg.load(path), obj)


def test_single_tensor(tmp_path):
    t = tfg.arange(5, dtype=tfg.int32)
    tfg.save(t, tmp_path / "t.safetensors")
    assert_same(tfg.load(tmp_path / "t.safetensors"), t)


@pytest.mark.parametrize("dtype", [tfg.float32, tfg.float64, tfg.int32, tfg.int64, tfg.bool, tfg.uint8],
                         ids=lambda d: d.name)
def test_dtypes(tmp_path, dtype):
    values = np.arange(-3, 9).reshape(3, 4)
    t = tfg.tensor(values % 2 == 0 if dtype == tfg.bool else values % 200, dtype=dtype)
    path = tmp_path / "d.safetensors"
    tfg.save({"t": t, "scalar": tfg.tensor(1, dtype=dtype)}, path)
    loaded = tfg.load(path)
    assert loaded["t"].dtype == dtype and loaded["scalar"].shape == ()
    assert_same(loaded["t"], t)


def test_empty_zero_dim_and_views(tmp_path):
    base = tfg.arange(24, dtype=tfg.float32).reshape(2, 3, 4)
    obj = {"empty": tfg.zeros(0, 3), "empty3": tfg.zeros(2, 0, 4, dtype=tfg.int64),
           "scalar": tfg.tensor(2.5), "transposed": base.permute(2, 0, 1), "strided": base[:, ::2, 1:]}
    path = tmp_path / "e.safetensors"
    tfg.save(obj, path)
    loaded = tfg.load(path)
    assert_same(loaded, obj)
    assert loaded["empty"].shape == (0, 3)


def test_loaded_tensors_are_independent_and_writable(tmp_path):
    t = tfg.ones(3)
    tfg.save({"t": t}, tmp_path / "w.safetensors")
    loaded = tfg.load(tmp_path / "w.safetensors")["t"]
    loaded.add_(1.0)
    assert t.tolist() == [1.0, 1.0, 1.0] and loaded.tolist() == [2.0, 2.0, 2.0]


def test_overwrite_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.safetensors"
    tfg.save({"v": tfg.zeros(2)}, path)
    tfg.save({"v": tfg.ones(2)}, path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert tfg.load(path)["v"].tolist() == [1.0, 1.0]
    # A failed save leaves the old file in place and no temporary behind.
    with pytest.raises(TypeError):
        tfg.save({"v": tfg.zeros(2), "bad": object()}, path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert tfg.load(path)["v"].tolist() == [1.0, 1.0]


def test_unsupported_leaves_name_the_key(tmp_path):
    path = tmp_path / "u.safetensors"
    with pytest.raises(TypeError, match=r"optimizer\.state\.0\.fn.*function"):
        tfg.save({"optimizer": {"state": {0: {"fn": len}}}}, path)
    with pytest.raises(TypeError, match=r"model\.w.*complex"):
        tfg.save({"model": {"w": 1 + 2j}}, path)
    with pytest.raises(TypeError, match=r"keys must be str or int.*\(1, 2\)"):
        tfg.save({"a": {(1, 2): tfg.zeros(1)}}, path)
    with pytest.raises(TypeError, match=r"x.*dtype <U1"):
        tfg.save({"x": np.array(["a"])}, path)
    with pytest.raises(TypeError, match="path"):
        tfg.save({}, 123)
    assert not os.listdir(tmp_path)


def test_colliding_keys_are_kept_apart(tmp_path):
    obj = {"a.b": tfg.zeros(1), "a": {"b": tfg.ones(1)}}
    tfg.save(obj, tmp_path / "c.safetensors")
    assert_same(tfg.load(tmp_path / "c.safetensors"), obj)


def test_foreign_file_loads_as_flat_dict(tmp_path):
    arrays = {"encoder.weight": np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32),
              "encoder.steps": np.array(5, dtype=np.int64), "mask": np.array([True, False])}
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file(arrays, str(path), metadata={"format": "np", "author": "someone"})
    loaded = tfg.load(path)
    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        assert isinstance(loaded[name], tfg.Tensor)
        assert loaded[name].dtype.numpy == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name]._data, array)


def test_foreign_file_with_unsupported_dtypes(tmp_path):
    path = tmp_path / "half.safetensors"
    safetensors.numpy.save_file({"ok": np.zeros(2, np.float32), "w": np.zeros(2, np.float16)}, str(path))
    with pytest.raises(TypeError, match=r"half.safetensors.*'w': 'float16'"):
        tfg.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        tfg.load(tmp_path / "nothing.safetensors")


def test_not_a_safetensors_file(tmp_path):
    for content in (b"", b"abc", b"hello world, not a checkpoint at all", json.dumps({"a": 1}).encode(),
                    struct.pack("<Q", 2**40) + b"{}"):
        path = tmp_path / "junk.bin"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="junk.bin"):
            tfg.load(path)


def _saved(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    obj = checkpoint()
    tfg.save(obj, path)
    data = path.read_bytes()
    return path, obj, data, 8 + struct.unpack("<Q", data[:8])[0]


def test_truncated_file(tmp_path):
    path, _, data, header_end = _saved(tmp_path)
    for cut in sorted({1, 7, 8, 9, header_end // 2, header_end - 1, header_end, header_end + 1,
                       (header_end + len(data)) // 2, len(data) - 1}):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="ckpt.safetensors"):
            tfg.load(path)


def test_extra_bytes_after_the_data(tmp_path):
    path, _, data, _ = _saved(tmp_path)
    path.write_bytes(data + b"\0" * 16)
    with pytest.raises(ValueError, match="ckpt.safetensors"):
        tfg.load(path)


def test_every_header_byte_flip_is_detected(tmp_path):
    path, obj, data, header_end = _saved(tmp_path)
    undetected = []
    masks = (0x01, 0x20, 0xFF, 0x04)  # a low bit, ASCII case, every bit, a digit
    for position in range(header_end):
        damaged = bytearray(data)
        damaged[position] ^= masks[position % len(masks)]
        path.write_bytes(bytes(damaged))
        try:
            loaded = tfg.load(path)
        except ValueError as e:
            assert "ckpt.safetensors" in str(e)
            continue
        try:
            assert_same(loaded, obj)  # a flip that changes nothing the file means is harmless
        except AssertionError:
            undetected.append(position)
    assert not undetected, f"flips at {undetected} loaded a different object"


def test_data_corruption_is_detected(tmp_path):
    path, _, data, header_end = _saved(tmp_path)
    for position in (header_end, (header_end + len(data)) // 2, len(data) - 1):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="checksum"):
            tfg.load(path)


class TinyNet(tfg.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = tfg.nn.Parameter(tfg.randn(4, 3))
        self.bias = tfg.nn.Parameter(tfg.zeros(4))
        self.register_buffer("steps", tfg.tensor(0))


def test_round_trip_into_a_module(tmp_path):
    tfg.manual_seed(2)
    source, target = tfg.nn.Sequential(TinyNet(), TinyNet()), tfg.nn.Sequential(TinyNet(), TinyNet())
    state = source.state_dict()
    path = tmp_path / "model.safetensors"
    tfg.save(state, path)
    loaded = tfg.load(path)
    assert list(loaded) == list(state)
    target.load_state_dict(loaded)
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value.detach()._data, state[name].detach()._data)
        assert value.dtype == state[name].dtype
