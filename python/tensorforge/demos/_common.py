"""Helpers the demos share: optional imports, the digits data, evaluation."""
import importlib
import time

import numpy as np

import tensorforge as tfg


def require(module, package, demo):
    """Imports ``module`` or raises MissingDependency naming the package to install."""
    from . import MissingDependency
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"the {demo} demo needs {package}: pip install "
                                f"'tensorforge[demo]' (or pip install {package})") from None


def stratified_split(labels, test_fraction, seed):
    """Train and test index arrays holding ``test_fraction`` of every class in the test part
    (rounded per class), drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * test_fraction))
        test.append(members[:cut])
        train.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def digits(demo):
    """scikit-learn's 8x8 digits: images (N, 1, 8, 8) float32 in [0, 1] and labels int64."""
    datasets = require("sklearn.datasets", "scikit-learn", demo)
    bunch = datasets.load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    return np.ascontiguousarray(images), bunch.target.astype(np.int64)


def predict(model, inputs, batch_size=512):
    """The model's outputs on ``inputs`` (a Tensor), in eval mode and without grad."""
    model.eval()
    with tfg.no_grad():
        parts = [model(inputs[i:i + batch_size]) for i in range(0, inputs.shape[0], batch_size)]
        out = tfg.cat(parts)
    model.train()
    return out


class Stopwatch:
    """Seconds since creation."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.start


def header(title, detail):
    print(f"== {title}")
    print(f"   {detail}")
