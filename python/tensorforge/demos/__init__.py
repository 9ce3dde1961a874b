"""End-to-end examples, run with ``python -m tensorforge demo NAME [--fast]``.

Each demo is a module here with ``main(fast=False, seed=0, output=None) -> dict``:
it trains on data that ships with an installed package (nothing is
downloaded), prints its progress and a final figure, and returns the figures
it printed (the tests read them). ``fast`` is a quick, smaller run. A run is
deterministic: everything random draws from ``tfg.manual_seed(seed)``.
"""
import importlib

DEMOS = {
    "digits": "small CNN on scikit-learn's 8x8 digits (>= 97 % test accuracy)",
    "mlp": "MLP with dropout and AdamW on breast-cancer data (accuracy, F1, ROC-AUC)",
    "forecast": "LSTM forecasting the weekly Mauna Loa CO2 series vs the naive forecast",
    "chars": "character-level Transformer decoder on Python's pydoc topics text",
    "autoencoder": "MLP autoencoder on the digits (reconstruction error vs PCA)",
    "gan": "GAN on the digits; writes a PNG grid of generated digits",
    "detect": "detection post-processing: batched NMS on synthetic scored boxes",
}


class MissingDependency(RuntimeError):
    """A demo's data package is not installed."""


def run(name, fast=False, seed=0, output=None):
    """Runs demo ``name`` and returns its figures."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; choose one of {list(DEMOS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.main(fast=fast, seed=seed, output=output)


__all__ = ["DEMOS", "MissingDependency", "run"]
