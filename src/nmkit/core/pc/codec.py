"""compress-pc entry points: train an HCLT, compress and decompress arrays, and the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nmkit.core import datasets, images, io
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError
from nmkit.core.pc import container, transform
from nmkit.core.pc.augment import augmented
from nmkit.core.pc.coding import FAILURES, OK, Plan, decode_chunks, encode_chunks
from nmkit.core.pc.config import PCConfig
from nmkit.core.pc.model import HCLT
from nmkit.core.pc.structure import chow_liu_tree

LOG2 = np.log(2.0)


@dataclass
class PCResult:
    action: str
    latents: int | None = None
    variables: int | None = None
    parameters: int | None = None
    transform: str | None = None
    train_bpd: float | None = None
    test_bpd: float | None = None  # theoretical: -log2 p(x) / D on the coded or held-out data
    actual_bpd: float | None = None  # 8 * file bytes / (items * D), container included
    payload_bpd: float | None = None  # the ANS words alone: what the coder adds to the model's bits
    items: int | None = None
    encoded_bytes: int | None = None
    encode_items_per_second: float | None = None
    decode_items_per_second: float | None = None
    roundtrip_exact: bool | None = None
    em_log_likelihood: list[float] = field(default_factory=list)  # per full-batch epoch (nats per item)
    seconds: float = 0.0
    model: HCLT | None = field(default=None, repr=False)
    blob: bytes | None = field(default=None, repr=False)
    decoded: np.ndarray | None = field(default=None, repr=False)
    evaluated: np.ndarray | None = field(default=None, repr=False)  # the data test_bpd (else train_bpd) refers to

    def summary(self) -> dict:
        hidden = {"model", "blob", "decoded", "evaluated"}
        return {k: v for k, v in self.__dict__.items() if k not in hidden and v is not None}


MAX_VALUES = 256
"""Symbols per variable: up to 8-bit data (the [D, K, V] emission tables and the coder's [chunk, V]
probabilities grow with V)."""


def load_array(source, split: str) -> np.ndarray:
    """A built-in image set (the given split: digits 8x8, 0..16; mnist 28x28, 0..255; photos / photos16 8x8 patches,
    0..255 / 0..15), a folder of images (PNG, PGM, ...; all one size) or an .npy integer array [N, ...] (no
    pickles)."""
    if isinstance(source, str) and source in datasets.BUILT_IN:
        return datasets.BUILT_IN[source][0](split)[0]
    if isinstance(source, str) and source in datasets.UNLABELLED:
        return datasets.UNLABELLED[source](split)
    path = Path(source)
    if path.is_dir():
        return images.read_folder(path)
    array = io.load_npy(path)
    if not np.issubdtype(array.dtype, np.integer) or array.ndim < 1:
        kind = "floats" if array.dtype.kind == "f" else str(array.dtype)
        raise InputError(f"{source}: expected an integer array [N, ...] (pixel values), found {array.ndim}-D "
                         f"{kind}")
    if array.size == 0:
        raise InputError(f"{source}: the array of shape {array.shape} holds no values (expected [N, ...] items "
                         f"of at least one value)")
    return array


def as_items(array: np.ndarray, values: int, name: str, variables: int | None = None) -> np.ndarray:
    """Items as rows [N, D] of int64, checked against the model's D and V (``values``)."""
    items = array.reshape(len(array), -1).astype(np.int64)
    if variables is not None and items.shape[1] != variables:
        raise InputError(f"{name}: items have {items.shape[1]} values each, the model expects {variables}")
    if items.size and (items.min() < 0 or items.max() >= values):
        raise InputError(f"{name}: values must lie in [0, {values - 1}] (V = {values} symbols), found "
                         f"{items.min()}..{items.max()} (V = {items.max() + 1} at least)")
    return items


def symbols_of(array: np.ndarray, values: int | None, name: str) -> int:
    """V for training: ``values`` if given, else the data's largest value + 1; at most 256 (8-bit data)."""
    found = int(array.max()) + 1
    if min(int(array.min()), 0) < 0:
        raise InputError(f"{name}: values must be non-negative, found {int(array.min())}")
    if (values or found) > MAX_VALUES:
        raise InputError(f"{name}: up to {MAX_VALUES} symbols per value (8-bit data) are supported, found values up "
                         f"to {found - 1}; 16-bit images need reducing to 8 bits first")
    return values or found


def train(config: PCConfig, advance: Callable[[int], None] | None = None) -> PCResult:
    start = time.perf_counter()
    array = load_array(config.data, "train")
    values = symbols_of(array, config.values, str(config.data))
    as_items(array, values, str(config.data))
    transform.check(config.transform, array.shape[1:], str(config.data))
    training = augmented(array, config.augment, str(config.data))
    items = transform.forward(config.transform, training, values).reshape(len(training), -1)
    rng = np.random.default_rng(config.seed)
    model = HCLT.random(chow_liu_tree(items, values), config.latents, values, rng, config.transform)
    prior = {"pseudocount": config.pseudocount, "smoothing": config.smoothing}
    epochs = config.minibatch_epochs
    for epoch in range(epochs):  # step size annealed linearly to 0 over the mini-batch phase
        step = config.step_size * (1 - epoch / max(epochs, 1))
        order = rng.permutation(len(items))
        for first in range(0, len(items), config.batch_size):
            batch = items[order[first : first + config.batch_size]]
            model.em_step(batch, step=step, weight=len(batch) / len(items), **prior)
        if advance is not None:
            advance(1)
    history = []
    for _ in range(config.full_batch_epochs):
        history.append(model.em_step(items, **prior) / len(items))
        if advance is not None:
            advance(1)
    result = PCResult("train", config.latents, model.variables, model.parameters(), model.transform, model=model,
                      em_log_likelihood=history)
    device = resolve_device(config.device)
    result.train_bpd = bits_per_dimension(model, items[: len(array)], device)  # the originals, not their copies
    result.evaluated = array
    if isinstance(config.data, str):  # a built-in set: its test split
        result.evaluated = load_array(config.data, "test")
        result.test_bpd = bits_per_dimension(model, model_items(model, result.evaluated, config.data), device)
    result.seconds = time.perf_counter() - start
    return result


def model_items(model: HCLT, array: np.ndarray, name: str) -> np.ndarray:
    """The rows [N, D] the circuit codes: ``array`` checked against the model's D and V, through its transform."""
    items = as_items(array, model.values, name, model.variables)
    if model.transform == "none":
        return items
    transform.check(model.transform, array.shape[1:], name)
    return transform.forward(model.transform, array, model.values).reshape(items.shape)


def bits_per_dimension(model: HCLT, items: np.ndarray, device: str = "cpu") -> float:
    """-log2 p(x) / D averaged over items; on CUDA the upward pass runs through the Triton kernel."""
    log_likelihood = model.log_likelihood_torch(items, device) if device == "cuda" else model.log_likelihood(items)
    return float(-log_likelihood.mean() / model.variables / LOG2)


CHUNKS_AT_ONCE = 16
"""Chunks coded by one parallel call: the encoder's scratch (4 bytes per value of those chunks) stays bounded."""


def compress(model: HCLT, array: np.ndarray, chunk: int, name: str = "input") -> bytes:
    return container.pack(*encode_payloads(model, array, chunk, name))


def encode_payloads(model: HCLT, array: np.ndarray, chunk: int, name: str = "input"):
    """The container header and the rANS payload of each chunk (``compress`` packs them into bytes)."""
    return encode_items(model, model_items(model, array, name), array, chunk, name)


def encode_items(model: HCLT, items: np.ndarray, array: np.ndarray, chunk: int, name: str):
    """``encode_payloads`` for the model's rows ``items`` of ``array``, already checked and transformed."""
    plan = Plan.of(model)
    step = chunk * CHUNKS_AT_ONCE
    try:
        payloads = [p for first in range(0, len(items), step) for p in encode_chunks(plan, items[first:first + step],
                                                                                     chunk)]
    except ValueError as exc:
        raise InputError(f"{name}: cannot be coded with this model ({exc})") from None
    header = container.Header(model.fingerprint(), array.dtype, tuple(array.shape[1:]), len(array), chunk,
                              [len(p) for p in payloads], container.digest_of(array))
    return header, payloads


def decompress(model: HCLT, blob: bytes, name: str) -> np.ndarray:
    header, payloads = container.unpack(blob, name)
    if header.fingerprint != model.fingerprint():
        raise InputError(f"{name}: was encoded with a different model (fingerprint mismatch)")
    expected_chunks = -(-header.count // header.chunk) if header.count else 0
    if len(payloads) != expected_chunks or int(np.prod(header.item_shape, dtype=np.int64)) != model.variables:
        raise InputError(f"{name}: header does not match the model ({model.variables} values per item)")
    items, status = decode_chunks(Plan.of(model), payloads, header.count, header.chunk)
    failed = np.flatnonzero(status != OK)
    if failed.size:
        raise InputError(f"{name}: payload chunk {failed[0]} cannot be decoded ({FAILURES[int(status[failed[0]])]})")
    pixels = transform.inverse(model.transform, items.reshape(header.count, *header.item_shape), model.values)
    array = pixels.astype(header.dtype)
    if container.digest_of(array) != header.digest:
        raise InputError(f"{name}: decoded data fails its checksum (corrupted payload)")
    return array


def load_model(path: Path) -> HCLT:
    return HCLT.load(path / "model.npz" if Path(path).is_dir() else path)


def encode(config: PCConfig) -> PCResult:
    model = load_model(config.model)
    array = load_array(config.input, "test")
    start = time.perf_counter()
    items = model_items(model, array, str(config.input))
    header, payloads = encode_items(model, items, array, config.chunk, str(config.input))
    blob = container.pack(header, payloads)
    seconds = time.perf_counter() - start
    return PCResult("encode", model.latents, model.variables, model.parameters(), model.transform,
                    test_bpd=bits_per_dimension(model, items), actual_bpd=8 * len(blob) / items.size,
                    payload_bpd=32 * sum(header.words) / items.size, items=len(items),
                    encoded_bytes=len(blob), encode_items_per_second=len(items) / seconds, seconds=seconds, blob=blob)


def decode(config: PCConfig) -> PCResult:
    model = load_model(config.model)
    try:
        blob = Path(config.input).read_bytes()
    except OSError as exc:
        raise InputError(f"{config.input}: cannot be read ({exc.strerror or exc})") from None
    start = time.perf_counter()
    array = decompress(model, blob, str(config.input))
    seconds = time.perf_counter() - start
    return PCResult("decode", model.latents, model.variables, items=len(array), encoded_bytes=len(blob),
                    decode_items_per_second=len(array) / seconds, seconds=seconds, decoded=array)


def roundtrip(config: PCConfig, advance: Callable[[int], None] | None = None) -> PCResult:
    trained = train(config, advance) if config.model is None else None
    model = trained.model if trained else load_model(config.model)
    array = load_array(config.input or config.data, "test")
    start = time.perf_counter()
    items = model_items(model, array, "input")
    header, payloads = encode_items(model, items, array, config.chunk, "input")
    blob = container.pack(header, payloads)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decompress(model, blob, "roundtrip")
    decode_seconds = time.perf_counter() - start
    result = trained or PCResult("roundtrip", model.latents, model.variables, model.parameters(), model.transform,
                                 model=model)
    result.action = "roundtrip"
    result.test_bpd = bits_per_dimension(model, items)
    result.actual_bpd = 8 * len(blob) / items.size
    result.payload_bpd = 32 * sum(header.words) / items.size
    result.items, result.encoded_bytes = len(items), len(blob)
    result.encode_items_per_second = len(items) / encode_seconds
    result.decode_items_per_second = len(items) / decode_seconds
    result.roundtrip_exact = bool(decoded.dtype == array.dtype and np.array_equal(decoded, array))
    result.blob, result.evaluated = blob, array
    return result


PICTURE_ITEMS = 2000


def bits_picture(model: HCLT, array: np.ndarray) -> np.ndarray:
    """The RGB picture of where the bits go (``picture.picture``) for up to PICTURE_ITEMS items of ``array``, with
    a few of them sent through the coder and back."""
    from nmkit.core.pc.picture import SAMPLES, picture

    items = model_items(model, array[:PICTURE_ITEMS], "data")
    samples = array[:SAMPLES]
    decoded = decompress(model, compress(model, samples, SAMPLES), "samples")
    return picture(model, items, tuple(array.shape[1:]), samples, decoded)
