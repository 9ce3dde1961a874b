"""Adam and AdamW: steps from bias-corrected running moments of the gradient."""
import math

import numpy as np

from .optimizer import Optimizer, check_betas, check_nonnegative, effective_grad

__all__ = ["Adam", "AdamW"]


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                decoupled_weight_decay, maximize):
    """One Adam/AdamW step on one parameter array, in place; PyTorch's documented algorithm:

        g = -grad if maximize else grad
        AdamW (decoupled):  param = param - lr * weight_decay * param
        Adam:               g = g + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        amsgrad: v_max = max(v_max, v), used in place of v below
        param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)

    The last line is evaluated as PyTorch evaluates it:
    param -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), the same value up to rounding.
    exp_avg (m), exp_avg_sq (v) and max_exp_avg_sq (v_max; None without
    amsgrad) are arrays updated in place; step counts from 1.
    """
    if decoupled_weight_decay:
        g = effective_grad(param, grad, 0, maximize)
        if weight_decay != 0:
            param *= 1.0 - lr * weight_decay
    else:
        g = effective_grad(param, grad, weight_decay, maximize)
    scratch = np.multiply(g, 1.0 - beta1)
    exp_avg *= beta1
    exp_avg += scratch
    np.multiply(g, g, out=scratch)
    scratch *= 1.0 - beta2
    exp_avg_sq *= beta2
    exp_avg_sq += scratch
    bias_correction1 = 1.0 - beta1 ** step
    bias_correction2 = 1.0 - beta2 ** step
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment, out=scratch)
    denom /= math.sqrt(bias_correction2)
    denom += eps
    np.divide(exp_avg, denom, out=denom)
    denom *= lr / bias_correction1
    param -= denom


class Adam(Optimizer):
    """Adam (torch.optim.Adam).

    lr, betas (beta1, beta2), eps, weight_decay (an L2 penalty added to the
    gradient; with decoupled_weight_decay=True it is AdamW's decay of the
    parameter instead), amsgrad, maximize. State per parameter: "step" (0-dim
    float32 Tensor), "exp_avg", "exp_avg_sq" and with amsgrad "max_exp_avg_sq"
    (Tensors like the parameter).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        if isinstance(betas, list):
            betas = tuple(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _check_options(self, options):
        name = type(self).__name__
        check_nonnegative(name, options, "lr", "eps", "weight_decay")
        check_betas(name, options)

    def _update(self, param, grad, state, group):
        if "step" not in state:
            state["step"] = self._step_tensor()
            state["exp_avg"] = self._state_tensor(param)
            state["exp_avg_sq"] = self._state_tensor(param)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self._state_tensor(param)
        step = state["step"]._data
        step += 1
        beta1, beta2 = group["betas"]
        adam_update(param, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                    state["max_exp_avg_sq"]._data if group["amsgrad"] else None, float(step),
                    group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                    group["decoupled_weight_decay"], group["maximize"])


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay, default 1e-2.

    The parameter shrinks by lr * weight_decay * param each step, outside the
    moments. Options and state as Adam's.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
