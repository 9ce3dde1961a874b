"""Keras-style training loop: ``tfg.fit``, its ``History`` and callbacks.

    history = tfg.fit(model, nn.CrossEntropyLoss(), optimizer, train_loader, epochs=10,
                      val_loader=val_loader, metrics=["accuracy"],
                      callbacks=[tfg.EarlyStopping(patience=3, restore_best_weights=True)])
    history["val_accuracy"][-1]

Each batch a loader yields is ``(inputs..., target)``: the model is called on
the inputs and ``loss_fn(output, target)`` is minimised. Metrics are computed
once per epoch over all of that epoch's outputs, so ``accuracy`` is the
epoch's accuracy and not a mean of per-batch figures.

Note [progress output]: on a terminal the progress line is redrawn in place
with ``\\r`` (at most ten times a second, and always on an epoch's last batch)
and finished with a newline when the epoch ends; on anything else (a file, a
pipe, a captured test) nothing is written during an epoch and one summary line
is written at its end, so logs stay readable. ``progress=False`` writes
nothing at all.
"""
import copy
import math
import numbers
import sys
import time

from . import metrics as _metrics
from .autograd import no_grad
from .differentiable import cat
from .tensor import Tensor

__all__ = ["fit", "History", "Callback", "EarlyStopping", "ModelCheckpoint"]

_MAXIMISED = ("acc", "auc", "f1", "precision", "recall", "r2")


class History(dict):
    """Per-epoch figures of a ``fit`` run: ``history["val_loss"]`` is a list with one
    value per epoch. Keys: ``loss``, each metric, ``val_loss`` and ``val_<metric>``
    (with a validation loader), ``lr`` (the first parameter group's learning rate during
    the epoch) and ``time`` (seconds the epoch took)."""

    @property
    def history(self):
        """The dict itself (Keras spells it ``history.history``)."""
        return self

    @property
    def epochs(self):
        """Number of epochs that ran."""
        return len(self.get("loss", ()))

    def _append(self, logs):
        for key, value in logs.items():
            self.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History({dict.__repr__(self)})"


class Callback:
    """Hooks into ``fit``. ``fit`` sets ``self.model``, ``self.optimizer`` and ``self.history``
    before ``on_train_begin``. Returning True from ``on_epoch_end`` stops training after that
    epoch."""

    model = None
    optimizer = None
    history = None

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Called with the 0-based epoch and that epoch's figures; return True to stop."""
        return False

    def on_batch_end(self, batch, logs=None):
        """Called after each training batch (0-based within the epoch) with ``{"loss": that
        batch's loss, "size": its sample count}``."""
        pass


def _resolve_mode(mode, monitor, who):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor[4:] if monitor.startswith("val_") else monitor
        return "max" if any(part in name for part in _MAXIMISED) else "min"
    return mode


def _monitored(logs, monitor, who):
    if monitor not in logs:
        raise KeyError(f"{who}: monitor {monitor!r} is not among this epoch's figures "
                       f"{sorted(logs)}" + (" (pass a val_loader to fit to get val_ figures)"
                                             if monitor.startswith("val_") else ""))
    return logs[monitor]


def _improves(value, best, mode, min_delta):
    if best is None:
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _snapshot(model):
    """Copies of the model's parameters and buffers, by state-dict key."""
    with no_grad():
        return {key: value.clone() for key, value in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stops training once ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row. With ``restore_best_weights`` the model gets the
    parameters of its best epoch back when training ends. ``mode`` "auto" minimises
    losses and errors and maximises accuracy, AUC, F1, precision, recall and R².

    After training, ``best``, ``best_epoch`` (0-based) and ``stopped_epoch`` (0-based, or
    None when all epochs ran) tell what happened."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        if not isinstance(patience, numbers.Integral) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, numbers.Real) or min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = None
        self.stopped_epoch = None
        self.wait = 0
        self._best_state = None

    def on_epoch_end(self, epoch, logs=None):
        value = float(_monitored(logs, self.monitor, "EarlyStopping"))
        if _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_state = _snapshot(self.model)
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_state is not None:
            self.model.load_state_dict(self._best_state)


class ModelCheckpoint(Callback):
    """Saves the model's state dict with ``tfg.save`` after each epoch, or with
    ``save_best_only`` only when ``monitor`` improved. ``path`` may hold format fields:
    ``{epoch}`` (1-based) and any figure of the epoch, e.g. ``"ckpt-{epoch:02d}.safetensors"``.
    ``saved`` lists the paths written, ``best`` the best monitored value."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")

    def on_train_begin(self, logs=None):
        self.best = None
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = float(_monitored(logs, self.monitor, "ModelCheckpoint"))
            if not _improves(value, self.best, self.mode, 0.0):
                return False
            self.best = value
        from . import io
        path = self.path.format(epoch=epoch + 1, **logs)
        io.save(self.model.state_dict(), path)
        self.saved.append(path)
        return False


class _Progress:
    """The progress line of one ``fit`` run (Note [progress output])."""

    width = 30
    batch_interval = 0.1   # seconds between redraws on a terminal

    def __init__(self, enabled, epochs, stream=None):
        self.stream = sys.stdout if stream is None else stream
        self.enabled = enabled
        try:
            self.live = enabled and self.stream.isatty()
        except (AttributeError, ValueError):
            self.live = False
        self.epochs = epochs
        self.last_draw = -float("inf")

    def batch(self, epoch, done, total, loss, samples, seconds):
        if not self.live:
            return
        now = time.perf_counter()
        if done != total and now - self.last_draw < self.batch_interval:
            return
        self.last_draw = now
        line = f"{self._head(epoch, done, total)} loss {loss:.4f} {_rate(samples, seconds)}"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def _head(self, epoch, done, total):
        head = f"epoch {epoch + 1}/{self.epochs}"
        if total is None:
            return f"{head} {done}/?"
        filled = self.width * done // total if total else self.width
        if filled >= self.width:
            bar = "=" * self.width
        else:
            bar = "=" * filled + ">" + " " * (self.width - filled - 1)
        return f"{head} [{bar}] {done}/{total}"

    def end_epoch(self, epoch, batches, logs, samples, seconds):
        if not self.enabled:
            return
        figures = " ".join(f"{key} {_fmt(value)}" for key, value in logs.items()
                           if key not in ("lr", "time"))
        line = f"{self._head(epoch, batches, batches)} {figures} {_rate(samples, seconds)} " \
               f"{seconds:.1f}s"
        self.stream.write(("\r" + line + "\x1b[K" if self.live else line) + "\n")
        self.stream.flush()


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _rate(samples, seconds):
    return f"{samples / seconds:.0f} samples/s" if seconds > 0 else "- samples/s"


def _metric_functions(metrics):
    named = []
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    for metric in metrics:
        if isinstance(metric, str):
            fn = getattr(_metrics, metric, None) if metric in _metrics.__all__ else None
            if fn is None:
                raise ValueError(f"fit: unknown metric {metric!r}; known: {list(_metrics.__all__)} "
                                 "or a callable (y_true, y_pred) -> float")
            named.append((metric, fn))
        elif callable(metric):
            named.append((getattr(metric, "__name__", type(metric).__name__), metric))
        else:
            raise TypeError("fit: a metric must be a name or a callable (y_true, y_pred) -> "
                            f"float, got {type(metric).__name__}")
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"fit: metric names must be distinct, got {names}")
    return named


def _check_monitors(callbacks, named, validating):
    """Fails before training when a callback monitors a figure that fit will not produce."""
    keys = ["loss"] + [name for name, _ in named]
    if validating:
        keys += ["val_" + key for key in keys]
    figures = dict.fromkeys(keys + ["lr", "time"])
    for callback in callbacks:
        if isinstance(callback, EarlyStopping) or \
                (isinstance(callback, ModelCheckpoint) and callback.save_best_only):
            _monitored(figures, callback.monitor, type(callback).__name__)


def _split_batch(batch):
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return tuple(batch[:-1]), batch[-1]
    raise ValueError("fit: each batch must be a tuple (inputs..., target); got "
                     f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                  if isinstance(batch, (tuple, list)) else ""))


def _batch_size(target):
    shape = getattr(target, "shape", None)
    return int(shape[0]) if shape else 1


def _current_lr(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        return None
    return float(groups[0]["lr"])


def _step_scheduler(scheduler, logs):
    from .optim.lr_scheduler import ReduceLROnPlateau
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(logs["val_loss"] if "val_loss" in logs else logs["loss"])
    else:
        scheduler.step()


def _run_epoch(model, loss_fn, loader, optimizer, keep_outputs, on_batch):
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns the mean loss
    (weighted by batch size), the sample count and the epoch's outputs and targets."""
    total_loss, samples, batches = 0.0, 0, 0
    outputs, targets = [], []
    for batch in loader:
        inputs, target = _split_batch(batch)
        output = model(*inputs)
        loss = loss_fn(output, target)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        size = _batch_size(target)
        batch_loss = float(loss.item())
        total_loss += batch_loss * size
        samples += size
        batches += 1
        if keep_outputs:
            outputs.append(output.detach() if isinstance(output, Tensor) else output)
            targets.append(target)
        if on_batch is not None:
            on_batch(batches, batch_loss, size, total_loss / samples, samples)
    if batches == 0:
        raise ValueError("fit: a loader yielded no batches")
    return total_loss / samples, samples, batches, outputs, targets


def _epoch_metrics(named, outputs, targets, prefix=""):
    if not named:
        return {}
    with no_grad():
        y_pred = cat(outputs) if isinstance(outputs[0], Tensor) else outputs
        y_true = cat(targets) if isinstance(targets[0], Tensor) else targets
    return {prefix + name: float(fn(y_true, y_pred)) for name, fn in named}


def fit(model, loss_fn, optimizer, train_loader, epochs, val_loader=None, metrics=(),
        callbacks=(), progress=True, scheduler=None):
    """Trains ``model`` for ``epochs`` passes over ``train_loader`` and returns a ``History``.

    Per batch ``(inputs..., target)``: ``loss_fn(model(*inputs), target)``, backward,
    ``optimizer.step()``. After each epoch the model is evaluated on ``val_loader`` (in
    ``eval()`` mode, under ``no_grad``), ``metrics`` (names from ``tfg.metrics`` such as
    ``"accuracy"``, or callables ``(y_true, y_pred) -> float``) are computed over the whole
    epoch's outputs, ``scheduler.step()`` runs (``ReduceLROnPlateau`` gets ``val_loss``, or
    ``loss`` without validation), and the callbacks see the epoch's figures; one returning
    True from ``on_epoch_end`` ends training. ``progress`` draws a progress bar with the loss
    and the rate on a terminal and one line per epoch elsewhere (Note [progress output]).
    """
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be an integer >= 0, got {epochs!r}")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be callable, got {type(loss_fn).__name__}")
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
        raise TypeError(f"fit: optimizer must have step() and zero_grad(), got "
                        f"{type(optimizer).__name__}")
    named = _metric_functions(metrics)
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"fit: callbacks must be tfg.Callback instances, got "
                            f"{type(callback).__name__}")
    _check_monitors(callbacks, named, val_loader is not None)
    history = History()
    for callback in callbacks:
        callback.model, callback.optimizer, callback.history = model, optimizer, history
    bar = _Progress(bool(progress), int(epochs))
    try:
        total = len(train_loader)
    except TypeError:
        total = None

    for callback in callbacks:
        callback.on_train_begin({})
    for epoch in range(int(epochs)):
        for callback in callbacks:
            callback.on_epoch_begin(epoch, {})
        lr = _current_lr(optimizer)
        started = time.perf_counter()
        model.train()

        def on_batch(done, batch_loss, size, mean_loss, samples):
            for callback in callbacks:
                callback.on_batch_end(done - 1, {"loss": batch_loss, "size": size})
            bar.batch(epoch, done, total, mean_loss, samples, time.perf_counter() - started)

        loss, samples, batches, outputs, targets = _run_epoch(
            model, loss_fn, train_loader, optimizer, bool(named), on_batch)
        logs = {"loss": loss}
        logs.update(_epoch_metrics(named, outputs, targets))
        del outputs, targets
        train_seconds = time.perf_counter() - started
        if val_loader is not None:
            model.eval()
            try:
                with no_grad():
                    val_loss, _, _, outputs, targets = _run_epoch(
                        model, loss_fn, val_loader, None, bool(named), None)
                logs["val_loss"] = val_loss
                logs.update(_epoch_metrics(named, outputs, targets, "val_"))
                del outputs, targets
            finally:
                model.train()
        if lr is not None:
            logs["lr"] = lr
        logs["time"] = time.perf_counter() - started
        history._append(logs)
        bar.end_epoch(epoch, batches if total is None else total, logs, samples, train_seconds)
        if scheduler is not None:
            _step_scheduler(scheduler, logs)
        stop = False
        for callback in callbacks:
            stop = bool(callback.on_epoch_end(epoch, copy.copy(logs))) or stop
        if stop:
            break
    for callback in callbacks:
        callback.on_train_end({})
    return history
