"""The demos end to end in their fast mode, the demo command line and the PNG writer.

A demo whose data package (scikit-learn, statsmodels) is not installed is
skipped. The fast runs are too short to learn much, so these tests check that
each demo runs, prints its figures and returns sane values; the digits demo's
full accuracy is checked by running it, not here.
"""
import math
import struct
import sys
import zlib

import numpy as np
import pytest

from tensorforge import demos
from tensorforge.__main__ import main as cli
from tensorforge.demos import _png


def run_fast(name, **kwargs):
    return demos.run(name, fast=True, **kwargs)


def test_digits(capsys):
    pytest.importorskip("sklearn")
    figures = run_fast("digits")
    out = capsys.readouterr().out
    assert "epoch 3/3" in out and "test accuracy:" in out
    assert 0.5 < figures["test_accuracy"] <= 1.0
    assert figures["loss"][-1] < figures["loss"][0]


def test_digits_is_deterministic(capsys):
    pytest.importorskip("sklearn")
    first = run_fast("digits")["loss"]
    assert run_fast("digits")["loss"] == first
    assert run_fast("digits", seed=1)["loss"] != first


def test_mlp(capsys):
    pytest.importorskip("sklearn")
    figures = run_fast("mlp")
    out = capsys.readouterr().out
    assert "ROC-AUC" in out and "val_accuracy" in out
    assert figures["accuracy"] > 0.8 and figures["roc_auc"] > 0.9 and 0 < figures["f1"] <= 1


def test_forecast(capsys):
    pytest.importorskip("statsmodels")
    figures = run_fast("forecast")
    out = capsys.readouterr().out
    assert "naive last-value forecast" in out
    assert math.isfinite(figures["rmse"]) and 0.3 < figures["naive_rmse"] < 1.0


def test_chars(capsys):
    figures = run_fast("chars")
    out = capsys.readouterr().out
    assert "sampled:" in out and "start" in out
    assert figures["end_loss"] < figures["start_loss"]
    assert figures["sample"].startswith("The ") and "\n" not in figures["sample"]


def test_autoencoder(capsys):
    pytest.importorskip("sklearn")
    figures = run_fast("autoencoder")
    assert "reconstruction error" in capsys.readouterr().out
    assert figures["autoencoder"] < figures["mean_image"] * 1.5
    assert figures["pca"] < figures["mean_image"]


def test_gan_writes_a_png(tmp_path, capsys):
    pytest.importorskip("sklearn")
    path = tmp_path / "digits.png"
    figures = run_fast("gan", output=str(path))
    assert str(path) in capsys.readouterr().out
    width, height, pixels = read_png(path.read_bytes())
    assert (width, height) == (8 * 34 + 2, 8 * 34 + 2)
    assert pixels.std() > 0
    assert figures["held_out"] < figures["noise"]


def test_detect(capsys):
    figures = run_fast("detect")
    out = capsys.readouterr().out
    assert "batched_nms" in out and "<- #" in out
    assert figures["kept"] + figures["removed"] == figures["raw"]
    assert figures["removed"] > 0 and figures["found"] == figures["objects"]


def test_demo_command_lists_runs_and_rejects(capsys):
    assert cli(["demo"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in demos.DEMOS)
    assert cli(["demo", "nonesuch"]) == 2
    assert "unknown demo 'nonesuch'" in capsys.readouterr().err
    assert cli(["demo", "detect", "--fast", "--seed", "3"]) == 0
    assert "NMS removed" in capsys.readouterr().out


def test_a_missing_data_package_is_a_clear_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)   # makes `import sklearn` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli(["demo", "digits", "--fast"]) == 2
    assert "pip install 'tensorforge[demo]'" in capsys.readouterr().err


def read_png(data):
    """Decodes an 8-bit greyscale, unfiltered PNG (what _png writes), checking every CRC."""
    assert data[:8] == _png.SIGNATURE
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 0)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()
    return width, height, rows[:, 1:]


def test_png_round_trip_and_grid():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    width, height, pixels = read_png(_png.encode_png(image))
    assert (width, height) == (4, 3) and (pixels == image).all()
    tiles = _png.grid(np.array([np.zeros((2, 2)), np.ones((2, 2))]), columns=2, scale=2, border=1,
                      border_level=7)
    assert tiles.shape == (6, 11)
    assert (tiles[1:5, 1:5] == 0).all() and (tiles[1:5, 6:10] == 255).all()
    assert (tiles[0] == 7).all() and (tiles[:, 5] == 7).all()
    with pytest.raises(ValueError, match="2-D uint8"):
        _png.encode_png(np.zeros((2, 2), np.float32))


def test_png_matches_pillow_when_installed():
    Image = pytest.importorskip("PIL.Image")
    import io
    image = (np.random.default_rng(0).random((5, 7)) * 255).astype(np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(_png.encode_png(image))))
    assert (decoded == image).all()



def test_the_chars_model_sees_no_future_characters():
    import tensorforge as tfg
    from tensorforge.demos.chars import CharTransformer

    tfg.manual_seed(0)
    model = CharTransformer(20).eval()
    text = tfg.randint(0, 20, (1, 16))
    changed = text.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 20
    with tfg.no_grad():
        before, after = model(text).numpy(), model(changed).numpy()
    assert np.array_equal(before[0, :10], after[0, :10])
    assert not np.allclose(before[0, 10:], after[0, 10:])
