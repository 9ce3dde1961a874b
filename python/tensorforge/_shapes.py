"""Shape helpers shared by the kernel wrappers and the backward rules."""


def sum_to(grad, shape):
    """Sums a broadcast gradient back down to ``shape`` (NumPy broadcasting rules)."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
