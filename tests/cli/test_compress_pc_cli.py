"""nmkit compress-pc end to end: train, encode, decode byte-identical, and refuse bad input with exit 2."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nmkit.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["compress-pc", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pc")
    data = np.random.default_rng(0).integers(0, 5, (300, 3, 4)).astype(np.int16)
    data[:, 1, :] = data[:, 0, :]  # some structure to learn
    np.save(folder / "data.npy", data)
    result = invoke("train", "--data", folder / "data.npy", "--latents", "4", "--minibatch-epochs", "2",
                    "--full-batch-epochs", "3", "--out", folder / "model", "-q")
    assert result.exit_code == 0, result.output
    return folder


def test_train_writes_the_model_and_a_picture_of_where_the_bits_go(trained):
    written = {p.name for p in (trained / "model").iterdir()}
    assert {"model.npz", "bits.png", "result.json", "recipe.yaml"} <= written
    png = (trained / "model" / "bits.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and int.from_bytes(png[16:20], "big") > 100  # width in IHDR


def test_encode_then_decode_restores_the_npy_file_byte_for_byte(trained):
    encoded, decoded = trained / "d.nmpc", trained / "d.npy"
    first = invoke("encode", trained / "data.npy", "--model", trained / "model", "-o", encoded, "--json", "-q")
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout)["result"]
    assert record["actual_bpd"] < np.log2(5)
    assert invoke("decode", encoded, "--model", trained / "model", "-o", decoded, "-q").exit_code == 0
    assert decoded.read_bytes() == (trained / "data.npy").read_bytes()
    refused = invoke("decode", encoded, "--model", trained / "model", "-o", decoded, "-q")
    assert refused.exit_code == 2 and "pass --force" in refused.stderr


@pytest.mark.parametrize(("setup", "args", "message"), [
    (lambda d: np.save(d / "big.npy", np.full((2, 3, 4), 9, np.int16)), ["encode", "big.npy"],
     "values must lie in [0, 4]"),
    (lambda d: np.save(d / "long.npy", np.zeros((2, 13), np.int16)), ["encode", "long.npy"], "the model expects 12"),
    (lambda d: np.save(d / "empty.npy", np.zeros((0, 12), np.int16)), ["encode", "empty.npy"], "holds no values"),
    (lambda d: (d / "junk.nmpc").write_bytes(b"hello world"), ["decode", "junk.nmpc"], "bad magic"),
    (lambda d: None, ["decode", "missing.nmpc"], "cannot be read"),
    (lambda d: None, ["encode", "data.npy", "--model", "nowhere.npz"], "no such file"),
    (lambda d: np.save(d / "nan.npy", np.full((2, 3, 4), np.nan)), ["encode", "nan.npy"], "NaN"),
    (lambda d: (d / "mixed").mkdir() or [(d / "mixed" / f"{n}.pgm").write_bytes(f"P5 {n} 2 255\n".encode()
                                                                                 + bytes(2 * n)) for n in (3, 4)],
     ["encode", "mixed"], "images differ in size"),
])
def test_bad_input_gives_one_line_and_exit_2(trained, monkeypatch, setup, args, message):
    monkeypatch.chdir(trained)
    setup(trained)
    extra = [] if "--model" in args else ["--model", trained / "model"]
    result = invoke(*args, *extra, "-o", trained / "out.bin", "--force")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_picture_that_fails_is_a_warning_not_a_failed_run(tmp_path, monkeypatch):
    from nmkit.core.pc import codec

    def broken(model, array):
        raise IndexError("index -9223372036854775808 is out of bounds")

    monkeypatch.setattr(codec, "bits_picture", broken)
    result = runner.invoke(app, ["compress-pc", "train", "--set", "minibatch_epochs=1", "--set", "full_batch_epochs=1",
                                 "--out", str(tmp_path / "m"), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: bits.png not drawn (IndexError" in result.stderr
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"model.npz", "result.json"}
    assert not (tmp_path / "m" / "bits.png").exists()
