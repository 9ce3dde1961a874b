"""Adagrad: per-coordinate steps scaled by the root of the sum of past squared gradients."""
import numpy as np

from .optimizer import Optimizer, check_nonnegative, effective_grad

__all__ = ["Adagrad"]


def adagrad_update(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step on one parameter array, in place; PyTorch's documented algorithm:

        g = -grad if maximize else grad;  g = g + weight_decay * param
        clr = lr / (1 + (step - 1) * lr_decay)          (step counts from 1)
        sum = sum + g**2
        param -= clr * g / (sqrt(sum) + eps)

    state_sum: the array of sums, updated in place.
    """
    g = effective_grad(param, grad, weight_decay, maximize)
    clr = lr / (1.0 + (step - 1.0) * lr_decay)
    state_sum += np.square(g)
    denom = np.sqrt(state_sum)
    denom += eps
    np.divide(g, denom, out=denom)
    denom *= clr
    param -= denom


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad).

    lr, lr_decay, weight_decay (L2 penalty added to the gradient),
    initial_accumulator_value, eps, maximize. State per parameter, created with
    the optimizer as PyTorch does: "step" (0-dim float32 Tensor) and "sum" (a
    Tensor like the parameter, starting at initial_accumulator_value).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))

    def _check_options(self, options):
        check_nonnegative("Adagrad", options, "lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                          "eps")

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for param in group["params"]:
            self._init_state(param._data, self.state[param], group)

    def _init_state(self, param, state, group):
        if "step" not in state:
            state["step"] = self._step_tensor()
            state["sum"] = self._state_tensor(param, group["initial_accumulator_value"])

    def _update(self, param, grad, state, group):
        self._init_state(param, state, group)
        step = state["step"]._data
        step += 1
        adagrad_update(param, grad, state["sum"]._data, float(step), group["lr"], group["lr_decay"],
                       group["weight_decay"], group["eps"], group["maximize"])
