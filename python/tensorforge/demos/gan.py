"""Demo ``gan``: a generative adversarial network on scikit-learn's 8x8 digits.

A generator (16 random numbers -> 64 -> 128 -> 64 pixels, sigmoid) and a
discriminator (64 -> 128 -> 64 -> 1 logit, LeakyReLU) trained against each
other with the non-saturating loss (BCE with logits) and Adam, on 80 % of the
digits. The figure: how far each generated digit is from its nearest training
digit (RMS over pixels), next to the same distance for held-out real digits
(what good samples look like) and for uniform noise (what bad ones look
like). A grid of 64 generated digits is written as a PNG by ``_png``.
"""
import numpy as np

import tensorforge as tfg
from tensorforge import nn

from ._common import Stopwatch, digits, header, stratified_split
from ._png import grid, write_png

LATENT = 16


def build_models():
    generator = nn.Sequential(
        nn.Linear(LATENT, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.Sigmoid())
    discriminator = nn.Sequential(
        nn.Linear(64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 64), nn.LeakyReLU(0.2),
        nn.Linear(64, 1))
    return generator, discriminator


def nearest_distance(samples, reference):
    """For each row of samples, the RMS pixel distance to the nearest row of reference."""
    squared = (samples ** 2).sum(1)[:, None] - 2 * samples @ reference.T + \
        (reference ** 2).sum(1)[None, :]
    return np.sqrt(np.maximum(squared.min(axis=1), 0) / samples.shape[1])


def main(fast=False, seed=0, output=None):
    images, labels = digits("gan")
    train, held_out = stratified_split(labels, 0.2, seed=seed)
    real = images[train].reshape(len(train), 64)
    epochs = 4 if fast else 120
    header("gan", f"GAN on {len(train)} 8x8 digits, {epochs} epochs of batch 64")
    tfg.manual_seed(seed)
    generator, discriminator = build_models()
    g_opt = tfg.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    d_opt = tfg.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    loader = tfg.data.DataLoader(tfg.data.TensorDataset(tfg.from_numpy(real)), batch_size=64,
                                 shuffle=True, drop_last=True)
    clock = Stopwatch()
    report_every = 1 if fast else 10
    for epoch in range(epochs):
        d_total = g_total = 0.0
        for (batch,) in loader:
            n = batch.shape[0]
            ones, zeros = tfg.ones(n, 1), tfg.zeros(n, 1)
            fake = generator(tfg.randn(n, LATENT))
            d_opt.zero_grad()
            d_loss = bce(discriminator(batch), ones) + bce(discriminator(fake.detach()), zeros)
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            g_loss = bce(discriminator(fake), ones)
            g_loss.backward()
            g_opt.step()
            d_total += d_loss.item()
            g_total += g_loss.item()
        if (epoch + 1) % report_every == 0 or epoch + 1 == epochs:
            print(f"epoch {epoch + 1}/{epochs} discriminator loss {d_total / len(loader):.4f} "
                  f"generator loss {g_total / len(loader):.4f} {clock():.1f}s", flush=True)

    generator.eval()
    with tfg.no_grad():
        samples = generator(tfg.randn(256, LATENT)).numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    reference = real.astype(np.float64)
    figures = {
        "generated": float(nearest_distance(samples, reference).mean()),
        "held_out": float(nearest_distance(images[held_out].reshape(-1, 64).astype(np.float64),
                                           reference).mean()),
        "noise": float(nearest_distance(rng.random((256, 64)), reference).mean()),
        "seconds": clock(),
    }
    path = output or "gan_digits.png"
    write_png(path, grid(samples[:64].reshape(64, 8, 8), columns=8, scale=4))
    figures["png"] = path
    print(f"wrote 64 generated digits to {path}")
    print(f"distance to the nearest training digit (RMS per pixel): generated "
          f"{figures['generated']:.3f}, held-out real digits {figures['held_out']:.3f}, "
          f"uniform noise {figures['noise']:.3f}")
    return figures
