"""A folder of images as one integer array [N, H, W] or [N, H, W, C]: the items compress-pc codes.

Netpbm files (PGM ``P2``/``P5``, PPM ``P3``/``P6``, 8 or 16 bit) are read here; PNG (and anything else Pillow
opens) goes through Pillow when it is installed. Files are taken in name order; every image must have the same
size and channels, so the stack is exactly what was on disk, pixel for pixel.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from nmkit.core import memory
from nmkit.core.errors import InputError

NETPBM = {".pgm", ".ppm", ".pnm"}
PILLOW = {".png", ".bmp", ".tif", ".tiff", ".webp"}
MODES = {"1": "L", "L": "L", "I;16": "I;16", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}
"""Pillow modes kept as they are (bilevel becomes 0/255 grey); a palette image is expanded to RGB(A)."""


def read_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in NETPBM | PILLOW and p.is_file())
    if not files:
        raise InputError(f"data {folder}: no images (expected .png, .pgm, .ppm, .bmp or .tif files)")
    first = read_image(files[0])
    memory.require(first.nbytes * len(files), f"data {folder}")
    stack = np.empty((len(files), *first.shape), first.dtype)
    stack[0] = first
    for index, path in enumerate(files[1:], start=1):
        image = read_image(path)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise InputError(f"data {folder}: images differ in size or depth ({files[0].name} is "
                             f"{_describe(first)}, {path.name} is {_describe(image)}); all must match")
        stack[index] = image
    return stack


def _describe(image: np.ndarray) -> str:
    channels = f"x{image.shape[2]}" if image.ndim == 3 else ""
    return f"{image.shape[1]}x{image.shape[0]}{channels} {image.dtype.itemsize * 8}-bit"


def read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in NETPBM:
        return read_netpbm(path)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise InputError(f"data {path}: reading {path.suffix} images needs Pillow (pip install pillow); "
                         "PGM/PPM and .npy need nothing more") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged TIFF tags and large images on stderr
            array = _decode(Image.open(path), path)
    except Image.DecompressionBombError:
        raise InputError(f"data {path}: declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels (Pillow's "
                         f"decompression-bomb limit); compress-pc codes small images") from None
    except (OSError, UnidentifiedImageError, ValueError):
        raise InputError(f"data {path}: cannot be read as an image") from None
    return array.astype(np.uint16) if array.dtype.kind == "i" else array


def _decode(opened, path: Path) -> np.ndarray:
    """The pixels of an image Pillow has opened (header read only), once its declared size fits in memory."""
    with opened as image:
        _check_declared_size(image, path)
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode not in MODES:
            raise InputError(f"data {path}: image mode {image.mode} is not supported "
                             f"(grey, grey+alpha, RGB or RGBA, 8 or 16 bit)")
        image = image.convert(MODES[image.mode]) if image.mode == "1" else image
        return np.asarray(image)


def _check_declared_size(image, path: Path) -> None:
    """The pixels a header declares, checked against free memory (or --max-memory) before anything is decoded."""
    width, height = image.size
    memory.require(width * height * 4 * 2, f"data {path} (declares {width}x{height} pixels)")


def read_netpbm(path: Path) -> np.ndarray:
    """PGM/PPM, ASCII (P2/P3) or binary (P5/P6), maxval up to 65535 (16-bit samples are big-endian)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"data {path}: cannot be read ({exc.strerror})") from None
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise InputError(f"data {path}: not a PGM/PPM file (magic P2, P3, P5 or P6)")
    fields, position = _header_fields(data, 3, path)
    width, height, maxval = fields
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise InputError(f"data {path}: header declares {width}x{height}, maxval {maxval}")
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = width * height * channels
    dtype = np.dtype(np.uint8 if maxval < 256 else np.uint16)
    if magic in (b"P5", b"P6"):
        body = data[position + 1:]
        if len(body) != count * dtype.itemsize:
            raise InputError(f"data {path}: {len(body)} bytes of pixels where the header declares "
                             f"{count * dtype.itemsize} (truncated, or a comment after maxval: one image per file, "
                             f"comments only before maxval)")
        pixels = np.frombuffer(body, dtype.newbyteorder(">"), count).astype(dtype)
    else:
        try:
            pixels = np.array(data[position:].split()[:count], np.int64)
        except ValueError:
            raise InputError(f"data {path}: pixel values are not integers") from None
        if len(pixels) < count:
            raise InputError(f"data {path}: {len(pixels)} pixel values, {count} declared")
        pixels = pixels.astype(dtype)
    if pixels.max(initial=0) > maxval:
        raise InputError(f"data {path}: a pixel exceeds the declared maxval {maxval}")
    return pixels.reshape(height, width, channels)[..., 0] if channels == 1 else pixels.reshape(height, width, 3)


def _header_fields(data: bytes, count: int, path: Path) -> tuple[list[int], int]:
    """The first ``count`` whitespace-separated integers after the magic (comments skipped), and the position of
    the single whitespace byte that ends the header."""
    fields, position = [], 2
    while len(fields) < count:
        while position < len(data) and data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            position = data.find(b"\n", position)
            position = len(data) if position < 0 else position
            continue
        end = position
        while end < len(data) and data[end:end + 1].isdigit():
            end += 1
        if end == position:
            raise InputError(f"data {path}: damaged PGM/PPM header (expected width, height and maxval)")
        fields.append(int(data[position:end]))
        position = end
    return fields, position
