"""Tests of tfg.fit, its History, callbacks and progress output.

The model and optimizer here are written with the core alone (Parameters and
tfg.matmul, plain SGD), so the loop is tested independently of nn and optim.
"""
import io
import re

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import nn


class Affine(nn.Module):
    def __init__(self, inputs, outputs):
        super().__init__()
        self.weight = nn.Parameter(tfg.zeros(inputs, outputs))
        self.bias = nn.Parameter(tfg.zeros(outputs))
        self.forward_modes = []

    def forward(self, x):
        self.forward_modes.append((self.training, tfg.is_grad_enabled()))
        return tfg.matmul(x, self.weight) + self.bias


class PlainSGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps += 1
        with tfg.no_grad():
            for p in self.params:
                p -= self.param_groups[0]["lr"] * p.grad


def mse(output, target):
    diff = output - target
    return (diff * diff).mean()


def softmax_cross_entropy(output, target):
    picked = output.log_softmax(1)[tfg.arange(target.shape[0]), target]
    return -picked.mean()


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.25).astype(np.float32)
    return tfg.from_numpy(x), tfg.from_numpy(y)


def loader(x, y, batch_size=16, shuffle=False):
    return tfg.data.DataLoader(tfg.data.TensorDataset(x, y), batch_size=batch_size,
                               shuffle=shuffle, seed=0)


def test_history_records_every_epoch_and_the_loss_falls():
    x, y = regression_data()
    model = Affine(3, 1)
    optimizer = PlainSGD(model.parameters(), lr=0.1)
    history = tfg.fit(model, mse, optimizer, loader(x, y), epochs=5, val_loader=loader(x, y),
                      progress=False)
    assert isinstance(history, tfg.History) and history.history is history
    assert list(history) == ["loss", "val_loss", "lr", "time"]
    assert history.epochs == 5 and all(len(v) == 5 for v in history.values())
    assert history["lr"] == [0.1] * 5
    assert all(t > 0 for t in history["time"])
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert optimizer.steps == 5 * 4
    with tfg.no_grad():
        expected = mse(model(x), y).item()
    assert history["val_loss"][-1] == pytest.approx(expected, rel=1e-5)


def test_epoch_loss_is_the_sample_weighted_mean_over_batches():
    x, y = regression_data(n=10)
    model = Affine(3, 1)
    optimizer = PlainSGD(model.parameters(), lr=0.0)
    history = tfg.fit(model, mse, optimizer, loader(x, y, batch_size=4), epochs=1, progress=False)
    assert history["loss"][0] == pytest.approx(float((y.numpy() ** 2).mean()), rel=1e-6)


def test_validation_runs_in_eval_mode_without_grad_and_training_mode_is_restored():
    x, y = regression_data(n=8)
    model = Affine(3, 1)
    tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), loader(x, y, batch_size=8), epochs=1,
            val_loader=loader(x, y, batch_size=8), progress=False)
    assert model.forward_modes == [(True, True), (False, False)]
    assert model.training


def test_metrics_by_name_and_callable_over_the_whole_epoch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((90, 2)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    x, labels = tfg.from_numpy(x), tfg.from_numpy(labels)
    seen = []

    def positives(y_true, y_pred):
        seen.append((tuple(y_true.shape), tuple(y_pred.shape)))
        return float(np.asarray(y_pred.argmax(1)).sum())

    model = Affine(2, 2)
    history = tfg.fit(model, softmax_cross_entropy, PlainSGD(model.parameters(), 0.5),
                      loader(x, labels, batch_size=32), epochs=3,
                      val_loader=loader(x, labels, batch_size=32),
                      metrics=["accuracy", positives], progress=False)
    assert list(history) == ["loss", "accuracy", "positives", "val_loss", "val_accuracy",
                             "val_positives", "lr", "time"]
    assert seen[:2] == [((90,), (90, 2))] * 2   # one call per epoch and split, on all 90 rows
    scores = tfg.no_grad()(model)(x)
    assert history["val_accuracy"][-1] == pytest.approx(tfg.metrics.accuracy(labels, scores))
    assert history["val_accuracy"][-1] > 0.9


def test_bad_arguments_are_rejected():
    x, y = regression_data(n=8)
    model = Affine(3, 1)
    optimizer = PlainSGD(model.parameters(), 0.1)
    with pytest.raises(ValueError, match="unknown metric 'acuracy'"):
        tfg.fit(model, mse, optimizer, loader(x, y), 1, metrics=["acuracy"], progress=False)
    with pytest.raises(ValueError, match="epochs"):
        tfg.fit(model, mse, optimizer, loader(x, y), -1, progress=False)
    with pytest.raises(TypeError, match="callbacks"):
        tfg.fit(model, mse, optimizer, loader(x, y), 1, callbacks=[object()], progress=False)
    with pytest.raises(ValueError, match="inputs..., target"):
        tfg.fit(model, mse, optimizer, [x], 1, progress=False)
    with pytest.raises(KeyError, match="val_loader"):
        tfg.fit(model, mse, optimizer, loader(x, y), 1, callbacks=[tfg.EarlyStopping()],
                progress=False)
    with pytest.raises(KeyError, match="'val_acc' is not among"):
        tfg.fit(model, mse, optimizer, loader(x, y), 1, val_loader=loader(x, y),
                callbacks=[tfg.ModelCheckpoint("unused", monitor="val_acc", save_best_only=True)],
                progress=False)
    assert optimizer.steps == 0   # all of these fail before training


class Scripted(tfg.Callback):
    """Records the events and marks the weights with the epoch number."""

    def __init__(self):
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(epoch)
        with tfg.no_grad():
            self.model.bias.fill_(float(epoch))   # marks the weights with the epoch


def scripted_fit(values, callbacks, epochs=10, scheduler=None):
    """fit on a model whose bias is set to the epoch number after each epoch and whose
    val_loss is values[epoch]; its gradients are zero. ``scheduler`` makes a scheduler
    from the optimizer (plain SGD, lr 1)."""
    x, y = regression_data(n=8)
    model = Affine(3, 1)
    optimizer = tfg.optim.SGD(model.parameters(), lr=1.0)
    script = Scripted()
    answers = iter(values)

    class OneBatch:
        def __len__(self):
            return 1

        def __iter__(self):
            yield x, y

    def scripted_loss(output, target):
        if model.training:
            return mse(output, target) * 0
        return tfg.tensor(next(answers)) + 0 * output.sum()

    history = tfg.fit(model, scripted_loss, optimizer, OneBatch(), epochs,
                      val_loader=OneBatch(), callbacks=[script] + callbacks, progress=False,
                      scheduler=scheduler and scheduler(optimizer))
    return model, history, script


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    stopper = tfg.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model, history, script = scripted_fit([5.0, 3.0, 4.0, 2.5, 2.75, 3.5, 1.0, 0.5], [stopper])
    assert history["val_loss"] == [5.0, 3.0, 4.0, 2.5, 2.75, 3.5]
    assert stopper.stopped_epoch == 5 and stopper.best_epoch == 3 and stopper.best == 2.5
    assert script.events == ["begin", 0, 1, 2, 3, 4, 5]
    assert model.bias.item() == 3.0   # the weights at the end of epoch 3


def test_early_stopping_min_delta_mode_max_and_no_restore():
    stopper = tfg.EarlyStopping(monitor="val_loss", patience=0, min_delta=0.5, mode="max")
    model, history, _ = scripted_fit([1.0, 1.4, 2.0, 2.2], [stopper])
    assert history.epochs == 2 and stopper.best == 1.0
    assert model.bias.item() == 1.0
    assert tfg.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert tfg.EarlyStopping(monitor="loss").mode == "min"
    with pytest.raises(ValueError, match="patience"):
        tfg.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        tfg.EarlyStopping(mode="lowest")


def test_early_stopping_without_a_stop_runs_all_epochs():
    stopper = tfg.EarlyStopping(patience=1)
    _, history, _ = scripted_fit([3.0, 2.0, 1.0], [stopper], epochs=3)
    assert history.epochs == 3 and stopper.stopped_epoch is None


def test_model_checkpoint_writes_state_dicts(tmp_path):
    every = tfg.ModelCheckpoint(str(tmp_path / "epoch{epoch}.safetensors"), save_best_only=False)
    best = tfg.ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_loss",
                               save_best_only=True)
    model, _, _ = scripted_fit([3.0, 1.0, 2.0], [every, best], epochs=3)
    assert [p.rsplit("/", 1)[1] for p in every.saved] == [
        "epoch1.safetensors", "epoch2.safetensors", "epoch3.safetensors"]
    assert len(best.saved) == 2 and best.best == 1.0
    state = tfg.load(tmp_path / "best.safetensors")
    assert sorted(state) == ["bias", "weight"]
    # Scripted ran first and marked the bias with the epoch before the checkpoint saved it
    assert state["bias"].numpy().tolist() == [1.0]
    assert tfg.load(tmp_path / "epoch3.safetensors")["bias"].numpy().tolist() == [2.0]
    fresh = Affine(3, 1)
    fresh.load_state_dict(state)


def test_callback_returning_true_stops_training():
    class StopAtTwo(tfg.Callback):
        def on_epoch_end(self, epoch, logs=None):
            return epoch == 1

    x, y = regression_data(n=8)
    model = Affine(3, 1)
    history = tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), loader(x, y), 10,
                      callbacks=[StopAtTwo()], progress=False)
    assert history.epochs == 2


EPOCH_LINE = re.compile(r"^epoch (\d+)/3 \[=+\] 4/4 loss \d+\.\d{4} val_loss \d+\.\d{4} "
                        r"\d+ samples/s \d+\.\ds$")


def test_progress_on_a_non_terminal_is_one_line_per_epoch(capsys):
    x, y = regression_data()
    model = Affine(3, 1)
    tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), loader(x, y), 3,
            val_loader=loader(x, y))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 3
    assert [EPOCH_LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]


def test_progress_false_writes_nothing(capsys):
    x, y = regression_data()
    model = Affine(3, 1)
    tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), loader(x, y), 2, progress=False)
    assert capsys.readouterr().out == ""


def test_progress_on_a_terminal_redraws_the_bar_in_place(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr("tensorforge.train._Progress.batch_interval", 0.0)
    x, y = regression_data()
    model = Affine(3, 1)
    tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), loader(x, y), 2)
    out = terminal.getvalue()
    assert out.count("\n") == 2
    draws = [d for d in out.split("\r") if d]
    assert re.match(r"epoch 1/2 \[=======>\s{22}\] 1/4 loss \d+\.\d{4} \d+ samples/s", draws[0])
    assert re.match(r"epoch 1/2 \[={15}>\s{14}\] 2/4 loss", draws[1])
    assert draws[4].startswith("epoch 1/2 [" + "=" * 30 + "] 4/4 loss")
    assert draws[4].rstrip("\n").endswith("s\x1b[K")


def test_a_scheduler_steps_once_per_epoch_and_lr_is_recorded():
    class Halve:
        def __init__(self, optimizer):
            self.optimizer = optimizer

        def step(self):
            self.optimizer.param_groups[0]["lr"] /= 2

    x, y = regression_data(n=8)
    model = Affine(3, 1)
    optimizer = PlainSGD(model.parameters(), 0.4)
    history = tfg.fit(model, mse, optimizer, loader(x, y), 3, scheduler=Halve(optimizer),
                      progress=False)
    assert history["lr"] == [0.4, 0.2, 0.1]


def test_fit_with_tfg_modules_and_optimizer_is_reproducible():
    def run():
        tfg.manual_seed(3)
        x, y = regression_data()
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
        data = tfg.data.DataLoader(tfg.data.TensorDataset(x, y), batch_size=16, shuffle=True)
        return tfg.fit(model, nn.MSELoss(), tfg.optim.Adam(model.parameters(), lr=0.01), data, 3,
                       progress=False)["loss"]

    first = run()
    assert first == run() and first[-1] < first[0]


def test_reduce_lr_on_plateau_is_stepped_with_the_validation_loss():
    # the training loss is constant (0) here: stepped with it, the scheduler would cut the lr
    def plateau(optimizer):
        return tfg.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)

    _, history, _ = scripted_fit([3.0, 2.0, 1.0], [], epochs=3, scheduler=plateau)
    assert history["lr"] == [1.0, 1.0, 1.0]
    _, history, _ = scripted_fit([3.0, 4.0, 5.0, 6.0], [], epochs=4, scheduler=plateau)
    assert history["lr"] == [1.0, 1.0, 0.5, 0.25]


def test_a_loader_without_len_works(capsys):
    x, y = regression_data(n=12)

    def batches():
        for i in range(0, 12, 4):
            yield x[i:i + 4], y[i:i + 4]

    class Reiterable:
        def __iter__(self):
            return batches()

    model = Affine(3, 1)
    history = tfg.fit(model, mse, PlainSGD(model.parameters(), 0.1), Reiterable(), 2)
    assert history.epochs == 2
    assert capsys.readouterr().out.splitlines()[0].startswith("epoch 1/2 [" + "=" * 30 + "] 3/3")
