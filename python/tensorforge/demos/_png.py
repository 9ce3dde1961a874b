"""A minimal PNG writer (8-bit greyscale), with zlib and struct only.

A PNG file is the 8-byte signature and chunks, each ``length, type, data,
CRC-32 of type + data``: IHDR (size, bit depth 8, colour type 0 = greyscale),
one IDAT holding the zlib-compressed scanlines, each prefixed by its filter
type (0: none), and an empty IEND.
"""
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image):
    """The PNG bytes of ``image``, a 2-D uint8 array (height, width) of grey levels."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"encode_png: expected a 2-D uint8 array, got shape {image.shape} and "
                         f"dtype {image.dtype}")
    height, width = image.shape
    if height == 0 or width == 0:
        raise ValueError(f"encode_png: the image is empty ({height}x{width})")
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + \
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b"")


def write_png(path, image):
    """Writes ``image`` (2-D uint8) to ``path`` as a greyscale PNG."""
    with open(path, "wb") as f:
        f.write(encode_png(image))


def grid(images, columns, scale=1, border=2, border_level=96):
    """Tiles images (N, h, w) with values in [0, 1] into one uint8 picture, ``columns`` per
    row, each magnified ``scale`` times, separated by ``border`` pixels of grey level
    ``border_level``."""
    images = np.clip(np.asarray(images, np.float64), 0.0, 1.0)
    count, h, w = images.shape
    rows = -(-count // columns)
    cell_h, cell_w = h * scale + border, w * scale + border
    out = np.full((rows * cell_h + border, columns * cell_w + border), border_level, np.uint8)
    big = np.round(255 * images).astype(np.uint8).repeat(scale, axis=1).repeat(scale, axis=2)
    for index in range(count):
        top = border + (index // columns) * cell_h
        left = border + (index % columns) * cell_w
        out[top:top + h * scale, left:left + w * scale] = big[index]
    return out
