"""tfg.optim: optimizers and schedulers against plain NumPy float64 versions of
PyTorch's documented algorithms, and against torch.optim when torch is installed."""
import math

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import optim
from tensorforge.optim import lr_scheduler

STEPS = 6
SHAPES = [(3, 4), (5,)]


def initial_values():
    rng = np.random.default_rng(1234)
    return [rng.standard_normal(shape) for shape in SHAPES]


def grad_at(values, t):
    """A gradient that depends on the current values and the step, changing sign now and then."""
    grads = []
    for index, v in enumerate(values):
        target = np.linspace(-1.0, 1.0, v.size).reshape(v.shape)
        grads.append((index + 1.0) * (v - target) + 0.5 * np.sin(3.0 * v + t))
    return grads


# ---------------------------------------------------------------------------------------------
# The documented algorithms, written plainly in float64.

def ref_sgd(values, steps, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    params = [v.astype(np.float64) for v in values]
    buffers = [None] * len(params)
    for t in range(steps):
        grads = grad_at(params, t)
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            if weight_decay != 0:
                g = g + weight_decay * p
            if momentum != 0:
                if t == 0:
                    buffers[i] = g
                else:
                    buffers[i] = momentum * buffers[i] + (1 - dampening) * g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            params[i] = p - lr * g
    return params


def ref_rmsprop(values, steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    params = [v.astype(np.float64) for v in values]
    v_avg = [np.zeros_like(p) for p in params]
    g_avg = [np.zeros_like(p) for p in params]
    buffers = [np.zeros_like(p) for p in params]
    for t in range(steps):
        grads = grad_at(params, t)
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            if weight_decay != 0:
                g = g + weight_decay * p
            v_avg[i] = alpha * v_avg[i] + (1 - alpha) * g ** 2
            v_tilde = v_avg[i]
            if centered:
                g_avg[i] = g_avg[i] * alpha + (1 - alpha) * g
                v_tilde = v_tilde - g_avg[i] ** 2
            if momentum > 0:
                buffers[i] = momentum * buffers[i] + g / (np.sqrt(v_tilde) + eps)
                params[i] = p - lr * buffers[i]
            else:
                params[i] = p - lr * g / (np.sqrt(v_tilde) + eps)
    return params


def ref_adagrad(values, steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10, maximize=False):
    params = [v.astype(np.float64) for v in values]
    sums = [np.full_like(p, initial_accumulator_value) for p in params]
    for t in range(1, steps + 1):
        grads = grad_at(params, t - 1)
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            clr = lr / (1 + (t - 1) * lr_decay)
            if weight_decay != 0:
                g = g + weight_decay * p
            sums[i] = sums[i] + g ** 2
            params[i] = p - clr * g / (np.sqrt(sums[i]) + eps)
    return params


def ref_adam(values, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    beta1, beta2 = betas
    params = [v.astype(np.float64) for v in values]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    v_max = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        grads = grad_at(params, t - 1)
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            if decoupled:
                p = p - lr * weight_decay * p
            elif weight_decay != 0:
                g = g + weight_decay * p
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g ** 2
            m_hat = m[i] / (1 - beta1 ** t)
            if amsgrad:
                v_max[i] = np.maximum(v_max[i], v[i])
                v_hat = v_max[i] / (1 - beta2 ** t)
            else:
                v_hat = v[i] / (1 - beta2 ** t)
            params[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def ref_adamw(values, steps, weight_decay=1e-2, **options):
    return ref_adam(values, steps, weight_decay=weight_decay, decoupled=True, **options)


REFERENCES = {"SGD": ref_sgd, "RMSprop": ref_rmsprop, "Adagrad": ref_adagrad, "Adam": ref_adam,
              "AdamW": ref_adamw}

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, maximize=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.03, momentum=0.8, weight_decay=0.05, nesterov=True, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.02, alpha=0.9, eps=1e-3, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.1, weight_decay=0.5)),
    ("AdamW", dict(lr=0.05, betas=(0.8, 0.95), maximize=True, weight_decay=0.1)),
]
CASE_IDS = [name + "-" + ("-".join(f"{k}={v}" for k, v in options.items()) or "defaults")
            for name, options in CASES]


def make_params(values, dtype=tfg.float64):
    return [tfg.tensor(v, dtype=dtype, requires_grad=True) for v in values]


def values_of(params):
    return [p.detach().numpy().astype(np.float64) for p in params]


def set_grads(params, t):
    for p, g in zip(params, grad_at(values_of(params), t)):
        p.grad = tfg.tensor(g, dtype=p.dtype)


def run(opt, params, steps, first_step=0):
    for t in range(first_step, first_step + steps):
        set_grads(params, t)
        opt.step()
    return values_of(params)


@pytest.mark.parametrize("name,options", CASES, ids=CASE_IDS)
def test_matches_documented_algorithm_float64(name, options):
    params = make_params(initial_values())
    got = run(getattr(optim, name)(params, **options), params, STEPS)
    want = REFERENCES[name](initial_values(), STEPS, **options)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)
    assert all(not np.array_equal(g, v) for g, v in zip(got, initial_values()))


@pytest.mark.parametrize("name,options", CASES, ids=CASE_IDS)
def test_matches_documented_algorithm_float32(name, options):
    params = make_params(initial_values(), tfg.float32)
    opt = getattr(optim, name)(params, **options)
    got = run(opt, params, STEPS)
    assert all(p.dtype == tfg.float32 for p in params)
    for state in opt.state.values():
        for key, value in state.items():
            assert value.dtype == tfg.float32, key
    want = REFERENCES[name](initial_values(), STEPS, **options)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,options", CASES, ids=CASE_IDS)
def test_matches_torch(name, options):
    torch = pytest.importorskip("torch")
    torch_params = [torch.tensor(v, requires_grad=True) for v in initial_values()]
    torch_opt = getattr(torch.optim, name)(torch_params, **options)
    params = make_params(initial_values())
    opt = getattr(optim, name)(params, **options)
    for t in range(STEPS):
        set_grads(params, t)
        opt.step()
        grads = grad_at([p.detach().numpy() for p in torch_params], t)
        for p, g in zip(torch_params, grads):
            p.grad = torch.from_numpy(g)
        torch_opt.step()
    for p, tp in zip(params, torch_params):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-13)
    ours, theirs = opt.state_dict(), torch_opt.state_dict()
    assert set(ours["state"]) == set(theirs["state"])
    for index, state in theirs["state"].items():
        assert set(ours["state"][index]) == set(state)
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(ours["state"][index][key].numpy()), value.numpy(),
                                       rtol=1e-11, atol=1e-13)
    for group, torch_group in zip(ours["param_groups"], theirs["param_groups"]):
        for key, value in group.items():
            if key in torch_group:
                assert torch_group[key] == value, key


def test_state_step_is_float32_tensor_counting_steps():
    params = make_params(initial_values())
    opt = optim.Adam(params)
    run(opt, params, 3)
    step = opt.state[params[0]]["step"]
    assert isinstance(step, tfg.Tensor) and step.dtype == tfg.float32 and step.ndim == 0
    assert step.item() == 3.0


def test_parameters_without_grad_are_skipped():
    values = initial_values()
    for name, options in [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", {}), ("RMSprop", {}),
                          ("AdamW", {}), ("Adagrad", {})]:
        params = make_params(values)
        opt = getattr(optim, name)(params, **options)
        for _ in range(2):
            params[0].grad = tfg.tensor(np.ones(SHAPES[0]))
            params[1].grad = None
            opt.step()
        np.testing.assert_array_equal(params[1].detach().numpy(), values[1])
        assert not np.array_equal(params[0].detach().numpy(), values[0])
        if name != "Adagrad":
            assert params[1] not in opt.state and len(opt.state) == 1


def test_param_groups_with_their_own_options():
    values = initial_values()
    params = make_params(values)
    opt = optim.SGD([{"params": [params[0]]}, {"params": params[1], "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0, 0.5]
    got = run(opt, params, STEPS)
    both_first = ref_sgd(values, STEPS, lr=0.1)
    both_second = ref_sgd(values, STEPS, lr=0.01, momentum=0.5)
    np.testing.assert_allclose(got[0], both_first[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], both_second[1], rtol=1e-12)


def test_add_param_group_takes_defaults_and_rejects_duplicates():
    values = initial_values()
    params = make_params(values)
    opt = optim.Adam([params[0]], lr=0.05)
    opt.add_param_group({"params": [params[1]], "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["lr"] == 0.05 and opt.param_groups[1]["betas"] == (0.5, 0.9)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [tfg.tensor([1.0], requires_grad=True)], "lr": -0.5})
    assert len(opt.param_groups) == 2


def test_zero_grad():
    params = make_params(initial_values())
    opt = optim.SGD(params, lr=0.1)
    set_grads(params, 0)
    opt.zero_grad(set_to_none=False)
    assert all(np.array_equal(p.grad.numpy(), np.zeros(p.shape)) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.zero_grad()


def test_step_with_closure_returns_its_loss():
    params = make_params(initial_values())
    opt = optim.SGD(params, lr=0.1)
    calls = []

    def closure():
        calls.append(tfg.is_grad_enabled())
        set_grads(params, 0)
        return 42.0

    assert opt.step(closure) == 42.0
    assert calls == [True]
    np.testing.assert_allclose(values_of(params)[1], ref_sgd(initial_values(), 1, lr=0.1)[1], rtol=1e-12)


def test_step_updates_in_place_and_bumps_version():
    params = make_params(initial_values())
    arrays = [p.detach().numpy() for p in params]
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, 1)
    assert all(np.shares_memory(a, p.detach().numpy()) for a, p in zip(arrays, params))
    assert not np.array_equal(arrays[0], initial_values()[0])


ROUND_TRIP = [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
              ("RMSprop", dict(momentum=0.5, centered=True)),
              ("Adagrad", dict(lr=0.1, lr_decay=0.01)), ("Adam", dict(lr=0.05, amsgrad=True)),
              ("AdamW", dict(lr=0.05, weight_decay=0.1))]


@pytest.mark.parametrize("name,options", ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_state_dict_round_trip_continues_identically(name, options):
    params = make_params(initial_values())
    opt = getattr(optim, name)(params, **options)
    run(opt, params, 3)
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1]]
    assert set(saved["state"]) == {0, 1}

    twin_params = make_params(values_of(params))
    twin = getattr(optim, name)(twin_params, lr=123.0)
    twin.load_state_dict(saved)
    assert twin.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert twin.param_groups[0]["params"][0] is twin_params[0]
    for key, value in twin.state[twin_params[0]].items():
        assert value is not opt.state[params[0]][key]
        np.testing.assert_array_equal(value.numpy(), opt.state[params[0]][key].numpy())

    got = run(opt, params, 3, first_step=3)
    got_twin = run(twin, twin_params, 3, first_step=3)
    for a, b in zip(got, got_twin):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_casts_to_parameter_dtype_and_accepts_arrays():
    params = make_params(initial_values())
    opt = optim.Adam(params, lr=0.05)
    run(opt, params, 2)
    saved = opt.state_dict()
    as_arrays = {"state": {str(i): {k: v.numpy() for k, v in s.items()} for i, s in saved["state"].items()},
                 "param_groups": saved["param_groups"]}
    params32 = make_params(values_of(params), tfg.float32)
    opt32 = optim.Adam(params32)
    opt32.load_state_dict(as_arrays)
    state = opt32.state[params32[1]]
    assert state["exp_avg"].dtype == tfg.float32 and state["step"].dtype == tfg.float32
    assert state["step"].item() == 2.0
    assert opt32.param_groups[0]["lr"] == 0.05


def test_load_state_dict_errors_leave_the_optimizer_unchanged():
    params = make_params(initial_values())
    opt = optim.Adam(params, lr=0.05)
    run(opt, params, 2)
    good = opt.state_dict()

    other_params = make_params(initial_values())
    other = optim.Adam(other_params, lr=0.01)
    before = other.state_dict()

    bad_groups = {"state": good["state"], "param_groups": good["param_groups"] * 2}
    with pytest.raises(ValueError, match="2 parameter groups.*has 1"):
        other.load_state_dict(bad_groups)
    bad_size = {"state": good["state"], "param_groups": [dict(good["param_groups"][0], params=[0])]}
    with pytest.raises(ValueError, match="1 parameters.*has 2"):
        other.load_state_dict(bad_size)
    bad_shape = {"state": {0: dict(good["state"][0]), 1: dict(good["state"][1],
                                                               exp_avg=tfg.tensor(np.zeros(4)))},
                 "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 1 has shape \(4,\).*\(5,\)"):
        other.load_state_dict(bad_shape)
    bad_index = {"state": {7: good["state"][0]}, "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match="parameter 7"):
        other.load_state_dict(bad_index)
    bad_option = {"state": {}, "param_groups": [dict(good["param_groups"][0], betas=(1.5, 0.9))]}
    with pytest.raises(ValueError, match="betas"):
        other.load_state_dict(bad_option)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        other.load_state_dict({"state": {}})
    assert other.state_dict() == before
    assert other.param_groups[0]["lr"] == 0.01


def test_load_torch_state_dict_and_continue_like_torch():
    torch = pytest.importorskip("torch")
    torch_params = [torch.tensor(v, requires_grad=True) for v in initial_values()]
    torch_opt = torch.optim.Adam(torch_params, lr=0.05, amsgrad=True)
    for t in range(3):
        for p, g in zip(torch_params, grad_at([p.detach().numpy() for p in torch_params], t)):
            p.grad = torch.from_numpy(g)
        torch_opt.step()
    params = make_params([p.detach().numpy() for p in torch_params])
    opt = optim.Adam(params)
    opt.load_state_dict(torch_opt.state_dict())
    assert isinstance(opt.state[params[0]]["exp_avg"], tfg.Tensor)
    for t in range(3, 6):
        for p, g in zip(torch_params, grad_at([p.detach().numpy() for p in torch_params], t)):
            p.grad = torch.from_numpy(g)
        torch_opt.step()
    got = run(opt, params, 3, first_step=3)
    for g, tp in zip(got, torch_params):
        np.testing.assert_allclose(g, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


BAD_OPTIONS = [
    ("SGD", dict(lr=-0.1), ValueError, "lr: -0.1"),
    ("SGD", dict(lr=float("nan")), ValueError, "lr: nan"),
    ("SGD", dict(lr="0.1"), TypeError, "lr must be a real number"),
    ("SGD", dict(momentum=-0.5), ValueError, "momentum: -0.5"),
    ("SGD", dict(weight_decay=-1e-4), ValueError, "weight_decay: -0.0001"),
    ("SGD", dict(nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "dampening=0.1"),
    ("RMSprop", dict(alpha=-0.9), ValueError, "alpha: -0.9"),
    ("RMSprop", dict(eps=-1e-8), ValueError, "eps: -1e-08"),
    ("RMSprop", dict(momentum=-1), ValueError, "momentum: -1"),
    ("Adagrad", dict(lr_decay=-1), ValueError, "lr_decay: -1"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value: -0.1"),
    ("Adagrad", dict(eps=-1), ValueError, "eps: -1"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]: -0.1"),
    ("Adam", dict(betas=(0.9,)), ValueError, "pair"),
    ("Adam", dict(eps=-1.0), ValueError, "eps: -1.0"),
    ("AdamW", dict(weight_decay=-0.01), ValueError, "AdamW: invalid weight_decay: -0.01"),
    ("AdamW", dict(lr=-1), ValueError, "AdamW: invalid lr: -1"),
]


@pytest.mark.parametrize("name,options,error,match", BAD_OPTIONS,
                         ids=[f"{n}-{'-'.join(map(str, o))}" for n, o, _, _ in BAD_OPTIONS])
def test_bad_options(name, options, error, match):
    with pytest.raises(error, match=match):
        getattr(optim, name)(make_params(initial_values()), **options)


def test_bad_params():
    p = tfg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="can only optimize Tensors.*ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="'params'"):
        optim.SGD([{"lr": 0.1}])


def test_non_leaf_parameter_rejected():
    p = tfg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2.0], lr=0.1)


class _Affine(tfg.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = tfg.nn.Parameter(tfg.zeros(3, 1, dtype=tfg.float64))
        self.bias = tfg.nn.Parameter(tfg.zeros(1, dtype=tfg.float64))

    def forward(self, x):
        return x @ self.weight + self.bias


def test_fits_least_squares_with_autograd_and_module_parameters():
    rng = np.random.default_rng(0)
    x = tfg.tensor(rng.standard_normal((64, 3)))
    true_w = np.array([[1.5], [-2.0], [0.5]])
    y = tfg.tensor(x.numpy() @ true_w + 0.25)
    model = _Affine()
    opt = optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(model.weight.detach().numpy(), true_w, atol=1e-3)
    np.testing.assert_allclose(model.bias.detach().numpy(), [0.25], atol=1e-3)


def test_step_counts_as_an_in_place_change_for_autograd():
    p = tfg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = tfg.tensor([1.0, 1.0])
    y = (p * p).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_repr_lists_groups():
    text = repr(optim.SGD(make_params(initial_values()), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


# ---------------------------------------------------------------------------------------------
# Schedulers

def sgd_with_groups(lrs):
    params = [tfg.tensor([1.0], requires_grad=True) for _ in lrs]
    return optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])


def lr_sequence(scheduler, epochs):
    sequence = [scheduler.get_last_lr()]
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        sequence.append(scheduler.get_last_lr())
    return sequence


def test_step_lr_sequence():
    opt = sgd_with_groups([1.0, 0.1])
    got = lr_sequence(lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), 10)
    want = [[1.0 * 0.5 ** (e // 3), 0.1 * 0.5 ** (e // 3)] for e in range(11)]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert [g["lr"] for g in opt.param_groups] == got[-1]
    assert [g["initial_lr"] for g in opt.param_groups] == [1.0, 0.1]


def test_cosine_annealing_sequence_follows_the_cosine_past_t_max():
    opt = sgd_with_groups([1.0, 0.5])
    t_max, eta_min = 5, 0.1
    got = lr_sequence(lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min), 3 * t_max + 2)
    want = [[eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2 for base in (1.0, 0.5)]
            for e in range(3 * t_max + 3)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[t_max] == pytest.approx([eta_min, eta_min])


def test_reduce_lr_on_plateau_hand_computed():
    opt = sgd_with_groups([1.0])
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    got = []
    for metric in metrics:
        scheduler.step(metric)
        got.append(scheduler.get_last_lr()[0])
    # best 5, 4 (good); 4 bad (1), 4 bad (2 > 1): halve, cooldown 1; next epoch in cooldown;
    # then bad 1, bad 2: halve; cooldown; 3 good; bad, bad: 0.25 -> floor 0.2; cooldown; bad, bad: stays 0.2
    want = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2]
    assert got == pytest.approx(want)


def test_reduce_lr_on_plateau_max_mode_abs_threshold():
    opt = sgd_with_groups([1.0, 0.1])
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.5,
                                               threshold_mode="abs", min_lr=[0.0, 0.05])
    for metric in [tfg.tensor(1.0), 2.0, 2.4, 3.0]:
        scheduler.step(metric)
    # 1.0 best; 2.0 > 1.5 good; 2.4 not > 2.5: reduce; 3.0 > 2.5 good
    assert scheduler.get_last_lr() == pytest.approx([0.1, 0.05])


SCHEDULERS = [
    ("StepLR", dict(step_size=2, gamma=0.3)),
    ("CosineAnnealingLR", dict(T_max=4)),
    ("CosineAnnealingLR", dict(T_max=3, eta_min=0.01)),
]


@pytest.mark.parametrize("name,options", SCHEDULERS, ids=[n + str(o) for n, o in SCHEDULERS])
def test_schedulers_match_torch(name, options):
    torch = pytest.importorskip("torch")
    torch_opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                                 for lr in (1.0, 0.3)], lr=1.0)
    torch_scheduler = getattr(torch.optim.lr_scheduler, name)(torch_opt, **options)
    want = [torch_scheduler.get_last_lr()]
    for _ in range(14):
        torch_opt.step()
        torch_scheduler.step()
        want.append(torch_scheduler.get_last_lr())
    got = lr_sequence(getattr(lr_scheduler, name)(sgd_with_groups([1.0, 0.3]), **options), 14)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)


PLATEAU = [dict(), dict(mode="max", patience=2, cooldown=1), dict(factor=0.5, patience=1, threshold=0.1,
                                                                   threshold_mode="abs", min_lr=0.01)]


@pytest.mark.parametrize("options", PLATEAU, ids=[str(o) for o in PLATEAU])
def test_reduce_lr_on_plateau_matches_torch(options):
    torch = pytest.importorskip("torch")
    noisy_descent = np.random.default_rng(3).uniform(0.0, 1.0, 60) + np.linspace(1.0, 0.0, 60)
    metrics = np.round(noisy_descent, 3).tolist()
    torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    torch_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options)
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd_with_groups([1.0]), **options)
    for metric in metrics:
        torch_scheduler.step(metric)
        scheduler.step(metric)
        assert scheduler.get_last_lr() == pytest.approx(torch_scheduler.get_last_lr(), rel=1e-15)


def test_scheduler_drives_the_optimizer_lr():
    p = tfg.tensor([0.0], requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = tfg.tensor([1.0])
        opt.step()
        scheduler.step()
    assert p.detach().numpy()[0] == pytest.approx(-(1.0 + 0.5 + 0.25))


@pytest.mark.parametrize("name,options", SCHEDULERS + [("ReduceLROnPlateau", dict(patience=1))],
                         ids=["StepLR", "Cosine4", "Cosine3", "Plateau"])
def test_scheduler_state_dict_round_trip(name, options):
    def advance(scheduler, epochs, start):
        for e in range(start, start + epochs):
            if name == "ReduceLROnPlateau":
                scheduler.step(float(e % 3))
            else:
                scheduler.step()
        return scheduler.get_last_lr()

    opt = sgd_with_groups([1.0, 0.2])
    scheduler = getattr(lr_scheduler, name)(opt, **options)
    advance(scheduler, 4, 0)
    twin_opt = sgd_with_groups([1.0, 0.2])
    twin = getattr(lr_scheduler, name)(twin_opt, **options)
    twin_opt.load_state_dict(opt.state_dict())
    twin.load_state_dict(scheduler.state_dict())
    assert "optimizer" not in scheduler.state_dict()
    assert twin.get_last_lr() == scheduler.get_last_lr()
    assert advance(twin, 5, 4) == advance(scheduler, 5, 4)


def test_scheduler_bad_options():
    opt = sgd_with_groups([1.0, 0.5])
    with pytest.raises(ValueError, match="step_size must be >= 1, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="step_size must be an integer"):
        lr_scheduler.StepLR(opt, step_size=2.5)
    with pytest.raises(ValueError, match="T_max must be >= 1, got -3"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=-3)
    with pytest.raises(ValueError, match="factor must be < 1.0, got 1.5"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'avg'"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(ValueError, match="threshold_mode"):
        lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="relative")
    with pytest.raises(ValueError, match="min_lr has 3 values for 2 parameter groups"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="patience"):
        lr_scheduler.ReduceLROnPlateau(opt, patience=-1)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=4)
    with pytest.raises(TypeError, match="Optimizer"):
        lr_scheduler.StepLR([1.0], step_size=2)
