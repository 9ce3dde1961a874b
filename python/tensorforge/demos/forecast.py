"""Demo ``forecast``: an LSTM forecasting the Mauna Loa CO2 series one week ahead.

statsmodels' ``co2`` dataset: weekly CO2 concentrations (ppm) from March 1958
to December 2001, its missing weeks filled by linear interpolation. The
series rises steadily under a yearly cycle, so the model works on weekly
changes: from the last 52 changes (standardised) an LSTM (hidden size 32)
and a linear layer predict the next one, trained with ``tfg.fit`` on the
first 80 % of the weeks. The figure: the root-mean-square error of the
one-week-ahead forecast over the last 20 %, next to the naive forecast
(next week = this week).
"""
import numpy as np

import tensorforge as tfg
from tensorforge import nn

from ._common import Stopwatch, header, predict, require

WINDOW = 52


class Forecaster(nn.Module):
    """LSTM over a window of weekly changes (N, T, 1) -> the next change (N, 1)."""

    def __init__(self, hidden=32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        output, _ = self.lstm(x)
        return self.head(output[:, -1])


def load_series():
    """The weekly series as float64, missing weeks interpolated linearly."""
    co2 = require("statsmodels.datasets.co2", "statsmodels", "forecast")
    values = np.asarray(co2.load().data["co2"], np.float64)
    known = np.flatnonzero(~np.isnan(values))
    return np.interp(np.arange(len(values)), known, values[known])


def windows(changes, start, stop):
    """Inputs (the WINDOW changes before t) and targets (change t) for t in [start, stop)."""
    index = np.arange(max(start, WINDOW), stop)
    inputs = np.stack([changes[t - WINDOW:t] for t in index])
    return inputs[:, :, None].astype(np.float32), changes[index][:, None].astype(np.float32), index


def main(fast=False, seed=0, output=None):
    series = load_series()
    changes = np.diff(series)              # changes[t] = series[t + 1] - series[t]
    split = int(0.8 * len(changes))
    scale = changes[:split].std()
    shift = changes[:split].mean()
    standardised = (changes - shift) / scale
    x_train, y_train, _ = windows(standardised, 0, split)
    x_test, y_test, test_index = windows(standardised, split, len(changes))
    if fast:
        x_train, y_train = x_train[-64:], y_train[-64:]
    header("forecast", f"LSTM on the weekly Mauna Loa CO2 series ({len(series)} weeks): "
                       f"{len(x_train)} training windows of {WINDOW} weekly changes, "
                       f"{len(x_test)} test weeks")
    tfg.manual_seed(seed)
    loader = tfg.data.DataLoader(tfg.data.TensorDataset(tfg.from_numpy(x_train),
                                                        tfg.from_numpy(y_train)),
                                 batch_size=32, shuffle=True)
    model = Forecaster()
    optimizer = tfg.optim.Adam(model.parameters(), lr=3e-3)
    clock = Stopwatch()
    history = tfg.fit(model, nn.MSELoss(), optimizer, loader, epochs=2 if fast else 20)
    seconds = clock()
    predicted_change = predict(model, tfg.from_numpy(x_test)).numpy()[:, 0] * scale + shift
    actual = series[test_index + 1]
    forecast = series[test_index] + predicted_change
    figures = {
        "rmse": float(np.sqrt(((forecast - actual) ** 2).mean())),
        "naive_rmse": float(np.sqrt(((series[test_index] - actual) ** 2).mean())),
        "seconds": seconds,
        "epochs": history.epochs,
    }
    print(f"training: {history.epochs} epochs in {seconds:.1f}s")
    print(f"one-week-ahead RMSE over the last {len(test_index)} weeks: LSTM "
          f"{figures['rmse']:.3f} ppm, naive last-value forecast {figures['naive_rmse']:.3f} ppm")
    return figures
