"""compress-pc's inputs: image folders (PGM/PPM here, PNG through Pillow), photo patches, 8-bit limits, bad data."""

import numpy as np
import pytest

from nmkit.core import images
from nmkit.core.errors import InputError
from nmkit.core.pc import HCLT, PCConfig, compress, decompress, transform
from nmkit.core.pc.codec import as_items, bits_picture, load_array, symbols_of, train
from nmkit.core.pc.picture import as_grid, bits_per_variable, colour_map
from nmkit.core.pc.structure import chow_liu_tree


def write_pgm(path, image: np.ndarray, ascii_: bool = False, comment: bool = False) -> None:
    h, w = image.shape[:2]
    colour = image.ndim == 3
    maxval = 65535 if image.dtype == np.uint16 else 255
    magic = (b"P3" if colour else b"P2") if ascii_ else (b"P6" if colour else b"P5")
    header = magic + b"\n" + (b"# made by a test\n" if comment else b"") + f"{w} {h}\n{maxval}\n".encode()
    big_endian = image.astype(image.dtype.newbyteorder(">"))
    body = " ".join(map(str, image.ravel())).encode() if ascii_ else big_endian.tobytes()
    path.write_bytes(header + body)


@pytest.mark.parametrize("ascii_", [False, True])
@pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((4, 3, 3), np.uint8), ((3, 6), np.uint16)])
def test_netpbm_files_read_back_pixel_for_pixel(tmp_path, ascii_, shape, dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    write_pgm(tmp_path / "a.pgm", image, ascii_=ascii_, comment=True)
    read = images.read_netpbm(tmp_path / "a.pgm")
    assert read.dtype == dtype and np.array_equal(read, image)


def test_a_folder_of_pgm_and_png_images_stacks_in_name_order(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    stack = rng.integers(0, 256, (3, 6, 5)).astype(np.uint8)
    write_pgm(tmp_path / "b.pgm", stack[1])
    Image.fromarray(stack[0]).save(tmp_path / "a.png")
    Image.fromarray(stack[2]).save(tmp_path / "c.png")
    (tmp_path / "notes.txt").write_text("ignored")
    assert np.array_equal(images.read_folder(tmp_path), stack)


def test_a_folder_with_mixed_sizes_or_no_images_is_refused_in_one_line(tmp_path):
    write_pgm(tmp_path / "a.pgm", np.zeros((4, 4), np.uint8))
    write_pgm(tmp_path / "b.pgm", np.zeros((4, 5), np.uint8))
    with pytest.raises(InputError, match=r"a.pgm is 4x4 8-bit, b.pgm is 5x4 8-bit"):
        images.read_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        images.read_folder(tmp_path / "empty")


@pytest.mark.parametrize("body", [b"P5\n4 4\n255\n" + bytes(3), b"P5\n4\n", b"P7\n1 1\n255\n\0", b"P2\n2 1\n9\n3 12",
                                  b"P2\n2 1\n255\n3 x"])
def test_damaged_netpbm_files_are_refused_with_the_file_named(tmp_path, body):
    (tmp_path / "bad.pgm").write_bytes(body)
    with pytest.raises(InputError, match="bad.pgm"):
        images.read_netpbm(tmp_path / "bad.pgm")


def test_photo_patches_are_a_fixed_split_of_two_photos_at_the_asked_levels():
    pytest.importorskip("PIL")
    train16, test16 = load_array("photos16", "train"), load_array("photos16", "test")
    test256 = load_array("photos", "test")
    assert train16.shape == (6784, 8, 8) and test16.shape == (1696, 8, 8) and test16.max() == 15
    assert np.array_equal(test256 // 16, test16) and test256.max() > 200


def test_sixteen_bit_data_is_refused_with_a_clear_message():
    with pytest.raises(InputError, match="up to 256 symbols.*found values up to 4095"):
        symbols_of(np.array([[0, 4095]]), None, "x.npy")
    assert symbols_of(np.array([[0, 255]]), None, "x.npy") == 256


def test_data_beyond_the_models_levels_is_refused_naming_both(tmp_path):
    with pytest.raises(InputError, match=r"\[0, 16\] \(V = 17 symbols\), found 0..255 \(V = 256"):
        as_items(np.array([[0, 255]]), 17, "mnist")


def test_float_arrays_are_refused_as_not_pixel_values(tmp_path):
    np.save(tmp_path / "f.npy", np.array([[0.5, np.nan]]))
    with pytest.raises(InputError, match="f.npy"):
        load_array(tmp_path / "f.npy", "test")
    np.save(tmp_path / "g.npy", np.array([[0.5, 1.0]]))
    with pytest.raises(InputError, match="integer array.*floats"):
        load_array(tmp_path / "g.npy", "test")


def test_a_folder_trains_and_round_trips_at_256_levels(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (1, 6, 6))
    stack = ((base + rng.integers(-3, 4, (40, 6, 6))) % 256).astype(np.uint8)  # correlated with one template
    for i, image in enumerate(stack):
        write_pgm(tmp_path / f"{i:03d}.pgm", image)
    result = train(PCConfig(data=tmp_path, latents=4, minibatch_epochs=1, full_batch_epochs=2, values=256))
    assert result.model.values == 256 and result.train_bpd < 8
    assert np.array_equal(decompress(result.model, compress(result.model, stack, 16), "f"), stack)


def test_the_bits_map_adds_up_to_the_payload_and_the_picture_is_drawn():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 5, (60, 3, 4)).astype(np.uint8)
    items = data.reshape(60, -1).astype(np.int64)
    model = HCLT.random(chow_liu_tree(items, 5), 3, 5, rng)
    per_variable = bits_per_variable(model, items)
    ideal = -model.log_likelihood(items).mean() / np.log(2)
    np.testing.assert_allclose(per_variable.sum(), ideal, rtol=1e-4)  # quantisation at 2^-24 only
    payload_bits = 8 * len(compress(model, data, 60))
    assert per_variable.sum() * 60 <= payload_bits  # the file adds its header and the coder's final state
    image = bits_picture(model, data)
    assert image.ndim == 3 and image.shape[2] == 3 and 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize(("variables", "grid"), [(70, (2, 64)), (49, (7, 7)), (784, (28, 28))])
def test_flat_items_are_drawn_whatever_their_length(variables, grid):
    """Issue 33: flat MNIST rows (784 values, not a multiple of 64) crashed the picture on its NaN padding after
    training; a square length is now drawn as the square, any other as padded rows that stay white."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 3, (20, variables)).astype(np.uint8)
    model = HCLT.random(chow_liu_tree(data.astype(np.int64), 3), 2, 3, rng)
    assert as_grid(np.arange(variables, dtype=float), (variables,)).shape == grid
    image = bits_picture(model, data)
    assert np.isfinite(image).all() and 0 <= image.min() and image.max() <= 1
    colours = colour_map(np.array([np.nan, 0.0, 1.0]), 1.0)
    assert (colours[0] == 1.0).all() and not (colours[1:] == 1.0).all()


def med_reference(image: np.ndarray, values: int) -> np.ndarray:
    """The JPEG-LS median edge detector residuals, zig-zag mapped, written out pixel by pixel."""
    out = np.zeros_like(image)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            if i == 0 and j == 0:
                pred = 0
            elif i == 0 or j == 0:
                pred = image[i, j - 1] if i == 0 else image[i - 1, j]
            else:
                a, b, c = int(image[i, j - 1]), int(image[i - 1, j]), int(image[i - 1, j - 1])
                pred = min(a, b) if c >= max(a, b) else max(a, b) if c <= min(a, b) else a + b - c
            r = (int(image[i, j]) - pred) % values
            out[i, j] = 2 * r if r <= (values - 1) // 2 else 2 * (values - r) - 1
    return out


@pytest.mark.parametrize("values,shape", [(2, (3, 4, 5)), (17, (2, 6, 6)), (256, (4, 7, 3)), (16, (2, 5, 4, 3))])
def test_med_transform_matches_the_reference_and_inverts_exactly(values, shape):
    rng = np.random.default_rng(values)
    images = rng.integers(0, values, shape)
    symbols = transform.forward("med", images, values)
    assert symbols.min() >= 0 and symbols.max() < values
    channels = images[..., None] if images.ndim == 3 else images
    expected = np.stack([np.stack([med_reference(channels[n, ..., c], values) for c in range(channels.shape[-1])],
                                  axis=-1) for n in range(len(images))]).reshape(symbols.shape)
    np.testing.assert_array_equal(symbols, expected)
    np.testing.assert_array_equal(transform.inverse("med", symbols, values), images)


def test_med_residuals_of_a_smooth_ramp_are_small_symbols():
    ramp = np.tile(np.arange(8) * 3, (8, 1))[None]  # a horizontal ramp: each pixel equals the one above it
    symbols = transform.forward("med", ramp, 256)
    assert np.all(symbols[0, 1:] == 0) and np.all(symbols[0, 0, 1:] == 6)  # first row: +3 from the left, zig-zag 6
    falling = transform.forward("med", ramp[:, :, ::-1], 256)
    assert np.all(falling[0, 0, 1:] == 5)  # -3 from the left: zig-zag 2 * 3 - 1


def test_a_med_model_saves_loads_and_round_trips_and_refuses_flat_items(tmp_path):
    images = (np.add.outer(np.arange(6), np.arange(6))[None] * 10 + np.arange(30)[:, None, None]) % 256
    np.save(tmp_path / "x.npy", images.astype(np.uint8))
    result = train(PCConfig(data=tmp_path / "x.npy", latents=3, minibatch_epochs=1, full_batch_epochs=2,
                            transform="med", values=256))
    result.model.save(tmp_path / "m.npz")
    model = HCLT.load(tmp_path / "m.npz")
    assert model.transform == "med" and model.fingerprint() == result.model.fingerprint()
    data = images.astype(np.uint8)
    assert np.array_equal(decompress(model, compress(model, data, 8), "f"), data)
    with pytest.raises(InputError, match="transform med needs images"):
        train(PCConfig(data=tmp_path / "flat.npy", transform="med")) if np.save(tmp_path / "flat.npy",
                                                                                data.reshape(30, -1)) is None else None


def test_a_format_1_model_without_a_transform_still_loads(tmp_path):
    rng = np.random.default_rng(4)
    model = HCLT.random(chow_liu_tree(rng.integers(0, 3, (20, 4)), 3), 2, 3, rng)
    np.savez(tmp_path / "old.npz", format=np.array(1), parent=model.tree.parent, order=model.tree.order,
             prior=model.prior, transition=model.transition, emission=model.emission)
    loaded = HCLT.load(tmp_path / "old.npz")
    assert loaded.transform == "none" and loaded.fingerprint() == model.fingerprint()
    np.savez(tmp_path / "bad.npz", format=np.array(2), parent=model.tree.parent, order=model.tree.order,
             prior=model.prior, transition=model.transition, emission=model.emission, transform=np.array(7))
    with pytest.raises(InputError, match="unknown transform"):
        HCLT.load(tmp_path / "bad.npz")


def test_shift_augmentation_adds_one_pixel_shifted_copies_with_repeated_edges():
    from nmkit.core.pc.augment import augmented

    image = np.arange(12).reshape(1, 3, 4)
    out = augmented(image, "shift8", "x")
    assert out.shape == (9, 3, 4) and np.array_equal(out[0], image[0])
    right = out[1]  # dx = +1: each pixel takes its right neighbour's value, the last column repeats
    assert np.array_equal(right[:, :-1], image[0, :, 1:]) and np.array_equal(right[:, -1], image[0, :, -1])
    assert {tuple(o.ravel()) for o in out[1:]} == {tuple(np.roll(np.pad(image[0], 1, mode="edge"), (-dy, -dx),
                                                                 axis=(0, 1))[1:4, 1:5].ravel())
                                                   for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)}
    with pytest.raises(InputError, match="augment shift4 needs images"):
        augmented(np.zeros((2, 5), np.uint8), "shift4", "flat.npy")


def test_items_too_large_for_the_structures_d_by_d_tables_are_refused_before_allocating(monkeypatch):
    from nmkit.core import memory
    from nmkit.core.pc.structure import chow_liu_tree

    monkeypatch.setattr(memory, "budget", lambda: 1e6)  # 1 MB: D = 300 needs 2.9 MB
    with pytest.raises(InputError, match="structure learning over 300 values per item"):
        chow_liu_tree(np.zeros((4, 300), np.int64), 2)
