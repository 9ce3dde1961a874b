"""The CUDA kernels on the SIMT emulation (csrc/cuda/emulation/README.md).

Runs only against the emulated test build (TENSORFORGE_CUDA_EMULATION=ON, built
and run by tools/test_emulated.sh); skipped everywhere else. The CUDA GEMM is
compared with float64 NumPy on sizes that are not tile multiples and on
strided, transposed, negative-stride and broadcast operands; test-only kernels
(csrc/cuda/emulation/selftest.cu) check the emulator itself: barriers, warp
shuffles and votes, atomics across blocks, dynamic shared memory, launch
validation, and that planted bugs (a missing or divergent __syncthreads, a
shuffle over a partial warp) are caught rather than hung.
"""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import _C


def selftest(name, x=None, grid=1, block=32, smem=0):
    return _C._simt_selftest(name, x, grid, block, smem)


def test_reports_one_emulated_device():
    status = _C.cuda_status()
    assert status["built"] and status["available"] and status["emulated"]
    assert status["device_count"] == 1 and status["reason"] == ""
    assert tfg.cuda.is_built() and tfg.cuda.is_available() and tfg.cuda.is_emulated()
    assert tfg.cuda.device_count() == 1
    assert set(_C._simt_selftest_names()) >= {"block_sum", "warp_ops", "atomics"}


# --- The CUDA GEMM (csrc/ops/matmul/cuda/matmul.cu) ---

def reference(a, b, bias=None, c=None):
    out = a.astype(np.float64) @ b.astype(np.float64)
    if bias is not None:
        out = out + bias.astype(np.float64)
    if c is not None:
        out = out + c.astype(np.float64)
    return out


def check(out, ref, k, dtype):
    assert out.shape == ref.shape and out.dtype == dtype
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(out, ref, rtol=8 * eps * max(k, 1) ** 0.5,
                               atol=8 * eps * max(k, 1) * (np.abs(ref).max() if ref.size else 1))


SIZES = [(1, 1, 1), (17, 33, 5), (130, 70, 40), (128, 64, 16), (64, 64, 16), (129, 65, 17),
         (3, 200, 31), (200, 3, 1)]


@pytest.mark.parametrize("m,n,k", SIZES, ids=lambda s: str(s))
def test_gemm_sizes(dtype, rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    check(_C._cuda_matmul(a, b), reference(a, b), k, dtype)


LAYOUTS = ["c", "transposed", "strided", "negative", "broadcast"]


def layout(x, kind, rng):
    if kind == "c":
        return x
    if kind == "transposed":
        return np.ascontiguousarray(x.T).T
    if kind == "strided":
        big = rng.standard_normal((2 * x.shape[0] + 1, 3 * x.shape[1])).astype(x.dtype)
        big[1::2, ::3] = x
        return big[1::2, ::3]
    if kind == "negative":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    return np.broadcast_to(x[:1], x.shape)  # every row the same (row stride 0)


@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", LAYOUTS)
def test_gemm_layouts(dtype, rng, a_layout, b_layout):
    m, n, k = 70, 45, 37
    a = layout(rng.standard_normal((m, k)).astype(dtype), a_layout, rng)
    b = layout(rng.standard_normal((k, n)).astype(dtype), b_layout, rng)
    check(_C._cuda_matmul(a, b), reference(a, b), k, dtype)


@pytest.mark.parametrize("m,n,k", [(17, 33, 5), (130, 70, 40), (5, 9, 0)], ids=lambda s: str(s))
def test_gemm_bias_and_accumulate(dtype, rng, m, n, k):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    c = np.asfortranarray(rng.standard_normal((m, n)).astype(dtype))  # a column-major C
    check(_C._cuda_matmul(a, b, bias), reference(a, b, bias), k, dtype)
    check(_C._cuda_matmul(a, b, bias, c), reference(a, b, bias, c), k, dtype)
    check(_C._cuda_matmul(a, b, None, c[::-1]), reference(a, b, None, c[::-1]), k, dtype)


def test_gemm_empty(dtype):
    assert _C._cuda_matmul(np.ones((0, 4), dtype), np.ones((4, 3), dtype)).shape == (0, 3)
    assert _C._cuda_matmul(np.ones((2, 4), dtype), np.ones((4, 0), dtype)).shape == (2, 0)
    np.testing.assert_array_equal(_C._cuda_matmul(np.ones((2, 0), dtype), np.ones((0, 3), dtype)),
                                  np.zeros((2, 3)))


def test_gemm_same_bits_on_one_and_two_threads(rng, restore_threads):
    a = rng.standard_normal((130, 70)).astype(np.float32)
    b = rng.standard_normal((70, 129)).astype(np.float32)
    tfg.set_num_threads(1)
    one = _C._cuda_matmul(a, b)
    tfg.set_num_threads(2)
    two = _C._cuda_matmul(a, b)
    np.testing.assert_array_equal(one, two)


def test_gemm_argument_errors():
    f32, f64 = np.ones((3, 4), np.float32), np.ones((4, 2), np.float64)
    with pytest.raises(TypeError, match="b is float64"):
        _C._cuda_matmul(f32, f64)
    with pytest.raises(ValueError, match="not \\(m, k\\) and \\(k, n\\)"):
        _C._cuda_matmul(f32, np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="bias"):
        _C._cuda_matmul(f32, np.ones((4, 2), np.float32), np.ones(3, np.float32))


# --- The emulator, through test-only kernels (csrc/cuda/emulation/selftest.cu) ---

def test_block_reduction(rng):
    for grid, block in [(1, 32), (5, 256), (3, 1024), (2, 1)]:
        x = rng.standard_normal(grid * block).astype(np.float32)
        out = selftest("block_sum", x, grid, block)
        np.testing.assert_allclose(out, x.astype(np.float64).reshape(grid, block).sum(1), rtol=1e-5, atol=1e-4)


def test_missing_syncthreads_is_caught(rng, restore_threads):
    # The planted bug loses the second half of every block, the same way on every run.
    grid, block = 6, 128
    x = rng.standard_normal(grid * block).astype(np.float32)
    correct = selftest("block_sum", x, grid, block)
    buggy = selftest("block_sum_missing_sync", x, grid, block)
    assert not np.allclose(buggy, correct)
    first_half = x.astype(np.float64).reshape(grid, block)[:, :block // 2].sum(1)
    np.testing.assert_allclose(buggy, first_half, rtol=1e-5, atol=1e-4)
    tfg.set_num_threads(1)
    np.testing.assert_array_equal(selftest("block_sum_missing_sync", x, grid, block), buggy)


def test_divergent_syncthreads_with_exited_threads_is_a_deadlock():
    with pytest.raises(RuntimeError) as info:
        selftest("divergent_exit", block=64, grid=3)
    msg = str(info.value)
    assert "deadlock" in msg and "divergent_exit" in msg
    assert "threads 0-15 wait at __syncthreads()" in msg and "selftest.cu:" in msg
    assert "threads 16-63 have exited" in msg
    assert "block (0, 0, 0)" in msg and "blockDim (64, 1, 1)" in msg


def test_syncthreads_at_different_calls_is_reported():
    with pytest.raises(RuntimeError, match=r"divergent barrier: threads .*0-15.*16-31"):
        selftest("divergent_sites", block=32)


def test_partial_warp_shuffle_is_a_deadlock():
    with pytest.raises(RuntimeError) as info:
        selftest("partial_warp_shuffle", block=64)
    msg = str(info.value)
    assert "deadlock" in msg and "__shfl_sync()" in msg and "0xffffffff" in msg
    assert "lanes 16-31 of that mask never arrive" in msg


def test_shuffle_mask_naming_missing_lanes_is_reported():
    with pytest.raises(RuntimeError, match=r"names lanes 16-31 of warp 1, which do not exist"):
        selftest("shuffle_missing_lanes", block=48)
    with pytest.raises(RuntimeError, match="does not include the calling lane"):
        selftest("shuffle_mask_excludes_caller", block=32)


def test_emulator_recovers_after_errors(rng):
    for name in ["divergent_exit", "partial_warp_shuffle", "divergent_sites"]:
        with pytest.raises(RuntimeError):
            selftest(name, block=64)
    test_block_reduction(rng)


def warp_ops_reference(v):
    lanes = np.arange(32)
    out = np.empty((32, 16))
    out[:, 0] = v[(lanes * 7 + 3) % 32]
    out[:, 1] = v[lanes // 8 * 8 + 3]
    out[:, 2] = np.where(lanes >= 3, v[np.maximum(lanes - 3, 0)], v)
    out[:, 3] = np.where(lanes % 16 >= 5, v[np.maximum(lanes - 5, 0)], v)
    out[:, 4] = np.where(lanes + 4 < 32, v[np.minimum(lanes + 4, 31)], v)
    out[:, 5] = np.where(lanes % 8 + 2 < 8, v[np.minimum(lanes + 2, 31)], v)
    out[:, 6] = v[lanes ^ 5]
    x = lanes ^ 12
    out[:, 7] = np.where(x // 8 > lanes // 8, v, v[x])
    out[:, 8] = sum(1 << int(i) for i in lanes if v[i] > 0)
    out[:, 9] = (v > 2).any()
    out[:, 10] = (v > -3).all()
    out[:, 11] = v.astype(np.float64).sum()
    out[:, 12] = v[lanes ^ 1]
    low = sum(1 << int(i) for i in lanes[:16] if v[i] > 0)
    high = sum(1 << int(i) for i in lanes[16:] if v[i] > 0)
    out[:, 13] = np.where(lanes < 16, low, high)
    d = v.astype(np.float64) * 1e10 + 0.25
    out[:, 14] = np.where(lanes < 31, d[np.minimum(lanes + 1, 31)], d)
    out[:, 15] = (31 - lanes) ** 2 - 100
    return out


def test_warp_shuffles_and_votes(rng):
    v = (2 * rng.standard_normal(128)).astype(np.float32)
    v[32:64] = np.abs(v[32:64]) + 0.5    # a warp where every vote is true
    v[64:96] = -np.abs(v[64:96]) - 0.5   # and one where no lane is positive
    v[70] = -5.0
    out = selftest("warp_ops", v, 1, 128).reshape(128, 16)
    for w in range(4):
        got, want = out[32 * w:32 * (w + 1)], warp_ops_reference(v[32 * w:32 * (w + 1)])
        np.testing.assert_array_equal(np.delete(got, 11, axis=1), np.delete(want, 11, axis=1),
                                      err_msg=f"warp {w}")
        np.testing.assert_allclose(got[:, 11], want[:, 11], rtol=1e-5, atol=1e-5)
        assert len(set(got[:, 11])) == 1  # the butterfly gives every lane the same bits


def test_barrier_predicates(rng):
    v = rng.standard_normal(4 * 96).astype(np.float32)
    v[96:192] = 1.0
    v[200] = -4.0
    out = selftest("barrier_predicates", v, 4, 96).reshape(4, 3)
    blocks = v.reshape(4, 96)
    np.testing.assert_array_equal(out[:, 0], (blocks > 0).sum(1))
    np.testing.assert_array_equal(out[:, 1], (blocks > -3).all(1))
    np.testing.assert_array_equal(out[:, 2], (blocks > 2).any(1))


def test_atomics_across_parallel_blocks(restore_threads):
    tfg.set_num_threads(2)
    grid, block = 16, 128
    total = grid * block
    f, d, i_sum, i_max, i_min, i_cas, u_inc, u_or, u_sub, ull = selftest("atomics", None, grid, block)
    assert f == total and d == 0.5 * sum(range(total))
    assert (i_sum, i_max, i_min, i_cas) == (sum(range(total)), total - 1, -(total - 1), total)
    assert (u_inc, u_or, u_sub) == (total % 10, 2**32 - 1, 2**32 - total)
    assert ull == total * 2**33


def test_threadfence_last_block(rng, restore_threads):
    tfg.set_num_threads(2)
    x = rng.standard_normal(16 * 256).astype(np.float32)
    out = selftest("last_block_sum", x, 16, 256)
    np.testing.assert_allclose(out[0], x.astype(np.float64).sum(), rtol=1e-4, atol=1e-3)


def test_dynamic_shared_memory(rng):
    grid, block = 3, 100
    x = rng.standard_normal(grid * block).astype(np.float32)
    out = selftest("dynamic_reverse", x, grid, block, smem=4 * block).reshape(grid, block, 2)
    np.testing.assert_array_equal(out[:, :, 0], x.reshape(grid, block)[:, ::-1])
    assert np.isnan(out[:, :, 1]).all()  # read before written: the poison, every time
    big = 100 * 1024
    with pytest.raises(RuntimeError, match=r"invalid argument .*cudaErrorInvalidValue.*dynamic shared"):
        selftest("dynamic_reverse", x, grid, block, smem=big)
    out = selftest("dynamic_reverse_optin", x, grid, block, smem=big).reshape(grid, block, 2)
    np.testing.assert_array_equal(out[:, :, 0], x.reshape(grid, block)[:, ::-1])


def test_index_arithmetic_on_3d_grids():
    grid, block = (3, 2, 2), (4, 3, 2)
    out = selftest("index_map", None, grid, block).reshape(-1, 12)
    rows = []
    for bz in range(2):
        for by in range(2):
            for bx in range(3):
                for tz in range(2):
                    for ty in range(3):
                        for tx in range(4):
                            rows.append([tx, ty, tz, bx, by, bz, *block, *grid])
    np.testing.assert_array_equal(out, np.array(rows, dtype=np.float64))


@pytest.mark.parametrize("grid,block,why", [
    (1, 1025, "1025 threads, more than 1024"),
    (1, (32, 32, 2), "2048 threads"),
    (1, (1, 1, 65), "exceeds the block dimensions"),
    (0, 32, "zero dimension"),
    ((1, 65536, 1), 32, "exceeds the grid dimensions"),
])
def test_launch_configuration_is_validated(grid, block, why):
    with pytest.raises(RuntimeError) as info:
        selftest("block_sum", np.zeros(4096), grid, block)
    msg = str(info.value)
    assert "invalid configuration argument (cudaErrorInvalidConfiguration, code 9)" in msg
    assert why in msg and "selftest.cu:" in msg


def test_unknown_selftest():
    with pytest.raises(ValueError, match="no test kernel named 'nope'"):
        selftest("nope")
