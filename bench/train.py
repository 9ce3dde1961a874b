"""Train suite: the cost of the thin Python layer (autograd, modules, optimizer)
against PyTorch's, on whole steps rather than single kernels.

Cases (issue 5), float32:
- `digits CNN train step bs64`: one training step of the `digits` demo's CNN
  (conv 1->16 3x3 pad 1, ReLU, max-pool 2, conv 16->32 3x3 pad 1, ReLU,
  max-pool 2, flatten, linear 128->10) on a batch of 64 8x8 images: zero_grad,
  forward, cross-entropy, backward, Adam step. PyTorch runs the same
  architecture from the same initial weights on the same batch. Target:
  ours within 1.5x of PyTorch's time (ours/torch >= 0.67).
- `MLP 4 layers fwd bs1 (grad|no_grad)`: the forward pass of a 4-layer MLP
  (784-512-256-128-10, ReLU between) on one sample, both libraries in the same
  grad mode: with grad recording (parameters require grad, as in training)
  and under no_grad (inference). Target: within 2x (ours/torch >= 0.5).

The FLOP counts are those of the layers' matrix products and convolutions (a
training step counts forward + both backward products, 3x the forward), so
GFLOP/s shows how far the step is from the kernels' speed; at these sizes the
time per call (the `ours us/call` column) and the ratio are what matter.

Check: ours against PyTorch (when installed) from the same weights: the loss
and every parameter's gradient after one step, and the MLP's output.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from bench.harness import Case, CaseRun, Contender, Timing, compare_to_max, optional_torch, seeded_rng

NAME = "train"
PEERS = ["torch"]
PEER_LABELS = {"torch": "torch"}
DEFAULT_DTYPES = ["float32"]
SHOW_TIMES = True

TIMING = Timing(warmup_s=0.2, warmup_calls=3, min_sample_s=0.05, budget_s=1.0, min_samples=7,
                max_samples=15)
QUICK_TIMING = Timing(warmup_s=0.01, min_sample_s=0.005, budget_s=0.05, min_samples=3, settle_s=0.01,
                      max_samples=3)

MLP_SIZES = (784, 512, 256, 128, 10)


def _torch_copy(model, torch_model) -> None:
    """Loads our model's parameters into the PyTorch model (same state-dict keys)."""
    import torch

    state = {k: torch.from_numpy(np.array(v.numpy(), copy=True)) for k, v in model.state_dict().items()}
    torch_model.load_state_dict(state)


def _torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def _cnn_flops(batch: int) -> float:
    conv1 = 2.0 * batch * 16 * 8 * 8 * 1 * 9
    conv2 = 2.0 * batch * 32 * 4 * 4 * 16 * 9
    linear = 2.0 * batch * 128 * 10
    return 3 * (conv1 + conv2 + linear)


def _train_step_case(dtype: str, threads: int, batch: int = 64) -> Case:
    label = f"digits CNN train step bs{batch}"

    def setup() -> CaseRun:
        import tensorforge as tfg
        from tensorforge.demos.digits import build_model

        rng = seeded_rng(label + dtype)
        x = rng.random((batch, 1, 8, 8)).astype(dtype)
        y = rng.integers(0, 10, batch).astype(np.int64)
        tfg.manual_seed(0)

        def ours_pair():
            model = build_model()
            return model, tfg.optim.Adam(model.parameters(), lr=1e-3)

        def ours_step(model, optimizer, loss_fn=tfg.nn.CrossEntropyLoss(),
                      xb=tfg.from_numpy(x), yb=tfg.from_numpy(y)):
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss

        model, optimizer = ours_pair()
        contenders = [Contender("tensorforge", lambda: ours_step(model, optimizer))]
        torch, note = optional_torch()
        if not torch:
            return CaseRun(contenders, None, [note, "no check without torch"])

        def torch_pair(source):
            net = _torch_cnn(torch)
            _torch_copy(source, net)
            return net, torch.optim.Adam(net.parameters(), lr=1e-3)

        def torch_step(net, opt, loss_fn=torch.nn.CrossEntropyLoss(), xb=torch.from_numpy(x),
                       yb=torch.from_numpy(y)):
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            return loss

        net, opt = torch_pair(model)
        contenders.append(Contender("torch", lambda: torch_step(net, opt)))

        def check() -> Dict[str, Any]:
            ours_model, ours_opt = ours_pair()
            theirs, their_opt = torch_pair(ours_model)
            names = [n for n, _ in ours_model.named_parameters()]
            ours_loss = ours_step(ours_model, ours_opt).item()
            their_loss = torch_step(theirs, their_opt).item()
            got = (np.array(ours_loss),) + tuple(p.grad.numpy() for p in ours_model.parameters())
            ref = (np.array(their_loss),) + tuple(dict(theirs.named_parameters())[n].grad.numpy()
                                                   for n in names)
            return dict(compare_to_max(got, ref, dtype, 16 * 9, 8.0),
                        reference="torch: loss and parameter gradients of one step")

        return CaseRun(contenders, check, [])

    params = 16 * 9 + 16 + 32 * 16 * 9 + 32 + 128 * 10 + 10
    item = np.dtype(dtype).itemsize
    return Case(label=label, dtype=dtype, threads=threads, flops=_cnn_flops(batch),
                bytes=float(item * (batch * 64 + 4 * params)), setup=setup,
                params={"batch": batch, "optimizer": "Adam", "parameters": params})


def _mlp_case(grad: bool, dtype: str, threads: int) -> Case:
    mode = "grad" if grad else "no_grad"
    label = f"MLP 4 layers fwd bs1 ({mode})"

    def setup() -> CaseRun:
        import tensorforge as tfg
        nn = tfg.nn

        tfg.manual_seed(0)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(MLP_SIZES) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        x = seeded_rng(label + dtype).standard_normal((1, MLP_SIZES[0])).astype(dtype)
        xb = tfg.from_numpy(x)

        def ours():
            with tfg.set_grad_enabled(grad):
                return model(xb)

        contenders = [Contender("tensorforge", ours)]
        torch, note = optional_torch()
        if not torch:
            return CaseRun(contenders, None, [note, "no check without torch"])
        tlayers = []
        for i, (fan_in, fan_out) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
            tlayers.append(torch.nn.Linear(fan_in, fan_out))
            if i < len(MLP_SIZES) - 2:
                tlayers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*tlayers)
        _torch_copy(model, net)
        xt = torch.from_numpy(x)

        def theirs():
            with torch.set_grad_enabled(grad):
                return net(xt)

        contenders.append(Contender("torch", theirs))

        def check() -> Dict[str, Any]:
            return dict(compare_to_max(ours().detach().numpy(), theirs().detach().numpy(), dtype,
                                       max(MLP_SIZES), 8.0), reference="torch: the MLP's output")

        return CaseRun(contenders, check, [])

    weights = sum(a * b + b for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:]))
    flops = 2.0 * sum(a * b for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:]))
    item = np.dtype(dtype).itemsize
    return Case(label=label, dtype=dtype, threads=threads, flops=flops,
                bytes=float(item * (weights + MLP_SIZES[0] + MLP_SIZES[-1])), setup=setup,
                bound="memory", params={"sizes": list(MLP_SIZES), "grad_mode": mode})


def cases(dtypes: List[str], threads: List[int], quick: bool = False) -> List[Case]:
    out = []
    for dtype in dtypes:
        for nt in threads:
            out.append(_train_step_case(dtype, nt))
            out.append(_mlp_case(True, dtype, nt))
            if not quick:
                out.append(_mlp_case(False, dtype, nt))
    return out


def timing(quick: bool) -> Timing:
    return QUICK_TIMING if quick else TIMING
