"""Reverse-mode automatic differentiation, define-by-run.

Each differentiable operation that runs while gradients are enabled and sees
an input that requires grad records a :class:`Node`: the name of its backward
rule (the table lives in ``differentiable.py``), an edge per input (the
producer's node, the leaf tensor itself, or None), the tensors it saved and
any options. ``backward`` walks the nodes in reverse topological order and
adds each leaf's gradient into its ``.grad``.

Note [saved tensors and in-place changes]: a node keeps the version of every
tensor it saves. Views share their base's version counter, and every in-place
write bumps it, so a rule that would read changed data raises instead.
"""
import threading

class _Mode(threading.local):
    enabled = True   # each thread starts with recording on


_mode = _Mode()


def is_grad_enabled():
    """Whether operations record the graph for backward (per thread, as PyTorch)."""
    return _mode.enabled


class _GradMode:
    __slots__ = ("_enabled", "_previous")

    def __init__(self, enabled):
        self._enabled = enabled

    def __enter__(self):
        self._previous = is_grad_enabled()
        _mode.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._previous
        return False

    def __call__(self, fn):
        import functools

        enabled = self._enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(enabled):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager (or decorator) in which no graph is recorded."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """Context manager (or decorator) that turns graph recording back on."""

    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """``with tfg.set_grad_enabled(flag):`` records the graph when flag is true."""

    def __init__(self, mode):
        super().__init__(bool(mode))


class Node:
    """One recorded operation: its rule's name, input edges, saved tensors and options.

    ``edges[i]`` is where the gradient of input i goes: ``(node, output_index)``
    for a computed input, the leaf Tensor itself, or None (no gradient needed).
    """
    __slots__ = ("name", "edges", "n_outputs", "_saved", "_versions", "ctx", "released",
                 "retained", "__weakref__")

    def __init__(self, name, edges, saved, ctx, n_outputs=1):
        self.name = name
        self.edges = edges
        self.n_outputs = n_outputs
        self._saved = saved
        self._versions = tuple([t._version[0] for t in saved])
        self.ctx = ctx
        self.released = False
        self.retained = None

    def saved(self):
        """The saved tensors' data, after checking none was changed in place."""
        if self.released:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {self.name}): its "
                "saved tensors were freed by the first backward. Pass retain_graph=True to the "
                "first backward if you need to run it twice.")
        for tensor, version in zip(self._saved, self._versions):
            if tensor._version[0] != version:
                raise RuntimeError(
                    f"one of the tensors needed for the gradient of {self.name} has been modified "
                    f"by an in-place operation: a tensor of shape {tuple(tensor.shape)} was at "
                    f"version {version} when saved and is now at version {tensor._version[0]}")
        return tuple(t._data for t in self._saved)

    def release(self):
        self._saved = ()
        self.released = True

    def __repr__(self):
        return f"<{self.name} backward>"


def _topological_order(roots):
    """Nodes reachable from ``roots``, each before every node that produced its inputs."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, edges = stack[-1]
            for edge in edges:
                if type(edge) is tuple and edge[0] not in seen:
                    seen.add(edge[0])
                    stack.append((edge[0], iter(edge[0].edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate_leaf(leaf, grad):
    """Adds ``grad`` into ``leaf.grad`` (a fresh copy the first time, in place after)."""
    from .tensor import Tensor

    if grad.shape != leaf._data.shape:
        raise RuntimeError(f"internal error: gradient of shape {grad.shape} for a tensor of "
                           f"shape {leaf._data.shape}")
    if leaf.grad is None:
        leaf.grad = Tensor._wrap(grad.astype(leaf._data.dtype, copy=True), leaf._device)
    else:
        leaf.grad._data += grad
        leaf.grad._mark_modified()


def _add_pending(pending, node, index, grad):
    slots = pending.get(node)
    if slots is None:
        slots = pending[node] = [None] * node.n_outputs
    slots[index] = grad if slots[index] is None else slots[index] + grad


def run_backward(roots, grads, retain_graph=False):
    """Back-propagates ``grads`` (arrays) from the tensors ``roots`` into the leaves' ``.grad``."""
    from .differentiable import BACKWARD_RULES

    pending = {}
    root_nodes = []
    for tensor, grad in zip(roots, grads):
        if tensor._node is None:
            _accumulate_leaf(tensor, grad)
        else:
            _add_pending(pending, tensor._node, tensor._output_index, grad)
            root_nodes.append(tensor._node)
    with no_grad():
        for node in _topological_order(root_nodes):
            slots = pending.pop(node, None)
            if slots is None:
                continue
            if node.retained is not None:
                for index, ref in node.retained:
                    target = ref()
                    if target is not None and slots[index] is not None:
                        _accumulate_leaf(target, slots[index])
            input_grads = BACKWARD_RULES[node.name](node, slots[0] if node.n_outputs == 1 else slots)
            if not retain_graph:
                node.release()
            for edge, input_grad in zip(node.edges, input_grads):
                if edge is None or input_grad is None:
                    continue
                if type(edge) is tuple:
                    _add_pending(pending, edge[0], edge[1], input_grad)
                else:
                    _accumulate_leaf(edge, input_grad)


__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]
