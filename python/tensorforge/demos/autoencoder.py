"""Demo ``autoencoder``: squeezing scikit-learn's 8x8 digits through 8 numbers.

An MLP encoder (64 -> 32 -> 8) and decoder (8 -> 32 -> 64, sigmoid) trained
with ``tfg.fit`` to reproduce their input (mean squared error), on a
stratified 80 % of the digits. The figure: the reconstruction error on the
held-out 20 %, next to the best linear code of the same size (PCA with 8
components, fitted on the training part) and the mean image.
"""
import numpy as np

import tensorforge as tfg
from tensorforge import nn

from ._common import Stopwatch, digits, header, predict, stratified_split

CODE = 8


def build_model():
    encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, CODE))
    decoder = nn.Sequential(nn.Linear(CODE, 32), nn.ReLU(), nn.Linear(32, 64), nn.Sigmoid())
    return nn.Sequential(encoder, decoder)


def pca_error(train, test, components):
    """Mean squared error of reconstructing ``test`` from its first ``components``
    principal components of ``train``."""
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:components]
    reconstructed = (test - mean) @ basis.T @ basis + mean
    return float(((reconstructed - test) ** 2).mean())


def main(fast=False, seed=0, output=None):
    images, labels = digits("autoencoder")
    train, test = stratified_split(labels, 0.2, seed=seed)
    flat = images.reshape(len(images), 64)
    header("autoencoder", f"MLP autoencoder 64 -> {CODE} -> 64 on {len(train)} digits, "
                          f"{len(test)} held out")
    tfg.manual_seed(seed)
    x_train, x_test = tfg.from_numpy(flat[train]), tfg.from_numpy(flat[test])
    loader = tfg.data.DataLoader(tfg.data.TensorDataset(x_train, x_train), batch_size=32,
                                 shuffle=True)
    model = build_model()
    optimizer = tfg.optim.Adam(model.parameters(), lr=3e-3)
    clock = Stopwatch()
    history = tfg.fit(model, nn.MSELoss(), optimizer, loader, epochs=3 if fast else 60,
                      val_loader=tfg.data.DataLoader(tfg.data.TensorDataset(x_test, x_test),
                                                     batch_size=512))
    seconds = clock()
    reconstruction = predict(model, x_test).numpy()
    test64, train64 = flat[test].astype(np.float64), flat[train].astype(np.float64)
    figures = {
        "autoencoder": float(((reconstruction - test64) ** 2).mean()),
        "pca": pca_error(train64, test64, CODE),
        "mean_image": float(((train64.mean(axis=0) - test64) ** 2).mean()),
        "seconds": seconds,
        "epochs": history.epochs,
    }
    print(f"training: {history.epochs} epochs in {seconds:.1f}s")
    print(f"held-out reconstruction error (MSE per pixel, pixels in [0, 1]): autoencoder "
          f"{figures['autoencoder']:.4f}, PCA with {CODE} components {figures['pca']:.4f}, "
          f"mean image {figures['mean_image']:.4f}")
    return figures
