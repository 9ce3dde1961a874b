"""Stochastic gradient descent, optionally with momentum (heavy-ball or Nesterov)."""
import numpy as np

from .optimizer import Optimizer, check_nonnegative, check_real, effective_grad

__all__ = ["SGD"]


def sgd_update(param, grad, momentum_buffer, first_step, lr, momentum, dampening, weight_decay,
               nesterov, maximize):
    """One SGD step on one parameter array, in place; PyTorch's documented algorithm:

        g = -grad if maximize else grad;  g = g + weight_decay * param
        if momentum != 0:
            b = g at the first step, else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        param -= lr * g

    momentum_buffer: the array holding b (updated in place), used when momentum != 0.
    """
    g = effective_grad(param, grad, weight_decay, maximize)
    if momentum != 0:
        b = momentum_buffer
        if first_step:
            np.copyto(b, g)
        else:
            b *= momentum
            b += (1.0 - dampening) * g
        g = g + momentum * b if nesterov else b
    param -= lr * g


class SGD(Optimizer):
    """Stochastic gradient descent (torch.optim.SGD).

    lr, momentum, dampening, weight_decay (L2 penalty added to the gradient),
    nesterov (needs momentum > 0 and dampening == 0), maximize. State per
    parameter: "momentum_buffer" (a Tensor like the parameter) when momentum != 0.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check_options(self, options):
        check_nonnegative("SGD", options, "lr", "momentum", "weight_decay")
        check_real("SGD", options, "dampening")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={options['momentum']!r}, dampening={options['dampening']!r}")

    def _update(self, param, grad, state, group):
        momentum = group["momentum"]
        buffer = None
        first_step = False
        if momentum != 0:
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = self._state_tensor(param)
                first_step = True
            buffer = state["momentum_buffer"]._data
        sgd_update(param, grad, buffer, first_step, group["lr"], momentum, group["dampening"],
                   group["weight_decay"], group["nesterov"], group["maximize"])
