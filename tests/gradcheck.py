"""Gradient checking for tests: autograd's gradients against central finite
differences in float64.

``check_gradients(fn, *arrays)`` makes float64 leaf tensors of the arrays,
reduces ``fn``'s output(s) to a scalar with fixed random weights, and
compares each input's ``.grad`` with the central difference of that scalar.
"""
import numpy as np

import tensorforge as tfg


def _scalar(outputs, weights):
    total = None
    for out, w in zip(outputs, weights):
        term = (out * tfg.from_numpy(w)).sum()
        total = term if total is None else total + term
    return total


def _as_tuple(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def check_gradients(fn, *arrays, eps=1e-6, atol=1e-6, rtol=1e-5, wrt=None, seed=0):
    """Asserts autograd's gradient of ``fn`` matches finite differences for each input
    (or the inputs whose positions are in ``wrt``)."""
    rng = np.random.default_rng(seed)
    leaves = [tfg.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    outputs = [o for o in _as_tuple(fn(*leaves)) if o is not None and o.dtype.is_floating_point]
    weights = [rng.standard_normal(o.shape) for o in outputs]
    _scalar(outputs, weights).backward()
    positions = range(len(arrays)) if wrt is None else wrt
    for i in positions:
        analytic = leaves[i].grad.numpy() if leaves[i].grad is not None else np.zeros(arrays[i].shape)
        numeric = np.zeros(arrays[i].shape)
        base = [np.asarray(a, np.float64).copy() for a in arrays]
        flat = base[i].reshape(-1)
        for j in range(flat.size):
            saved = flat[j]
            values = []
            for delta in (eps, -eps):
                flat[j] = saved + delta
                with tfg.no_grad():
                    outs = [o for o in _as_tuple(fn(*[tfg.from_numpy(b) for b in base]))
                            if o is not None and o.dtype.is_floating_point]
                    values.append(_scalar(outs, weights).item())
            flat[j] = saved
            numeric.reshape(-1)[j] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i}")
