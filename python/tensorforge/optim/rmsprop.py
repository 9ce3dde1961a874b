"""RMSprop: the gradient scaled by a running root mean square of past gradients."""
import numpy as np

from .optimizer import Optimizer, check_nonnegative, effective_grad

__all__ = ["RMSprop"]


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                   momentum, maximize):
    """One RMSprop step on one parameter array, in place; PyTorch's documented algorithm:

        g = -grad if maximize else grad;  g = g + weight_decay * param
        v = alpha * v + (1 - alpha) * g**2
        v~ = v - ga**2 with ga = alpha * ga + (1 - alpha) * g   when centered, else v
        d = g / (sqrt(v~) + eps)
        if momentum > 0: b = momentum * b + d;  param -= lr * b
        else:            param -= lr * d

    square_avg (v), grad_avg (ga; None unless centered) and momentum_buffer
    (b; None unless momentum > 0) are arrays updated in place.
    """
    g = effective_grad(param, grad, weight_decay, maximize)
    square_avg *= alpha
    square_avg += (1.0 - alpha) * np.square(g)
    if grad_avg is not None:
        grad_avg *= alpha
        grad_avg += (1.0 - alpha) * g
        denom = square_avg - np.square(grad_avg)
        np.sqrt(denom, out=denom)
    else:
        denom = np.sqrt(square_avg)
    denom += eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += g / denom
        param -= lr * momentum_buffer
    else:
        np.divide(g, denom, out=denom)
        denom *= lr
        param -= denom


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop).

    lr, alpha (smoothing of the squared-gradient average), eps, weight_decay
    (L2 penalty added to the gradient), momentum, centered (divide by an
    estimate of the variance instead of the second moment), maximize.
    State per parameter: "step" (0-dim float32 Tensor), "square_avg", and
    "momentum_buffer" when momentum > 0, "grad_avg" when centered (Tensors like
    the parameter).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_options(self, options):
        check_nonnegative("RMSprop", options, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _update(self, param, grad, state, group):
        if "step" not in state:
            state["step"] = self._step_tensor()
            state["square_avg"] = self._state_tensor(param)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._state_tensor(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._state_tensor(param)
        state["step"]._data += 1
        rmsprop_update(param, grad, state["square_avg"]._data,
                       state["grad_avg"]._data if group["centered"] else None,
                       state["momentum_buffer"]._data if group["momentum"] > 0 else None,
                       group["lr"], group["alpha"], group["eps"], group["weight_decay"],
                       group["momentum"], group["maximize"])
