import numpy as np
import pytest

from nmkit.core import io
from nmkit.core.errors import InputError


@pytest.mark.parametrize("dtype", ["int32", "float32", "uint8"])
@pytest.mark.parametrize("sizes", [[], [0], [5], [3, 0, 1000, 7]])
def test_npy_stream_writer_round_trips(tmp_path, dtype, sizes):
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 100, size).astype(dtype) for size in sizes]
    path = tmp_path / "d.npy"
    with io.NpyStreamWriter(path, dtype) as writer:
        for chunk in chunks:
            writer.write(chunk)
    expected = np.concatenate(chunks) if chunks else np.empty(0, dtype)
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["d.npy"]


def test_npy_stream_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError), io.NpyStreamWriter(tmp_path / "d.npy", "int32") as writer:
        writer.write(np.arange(3))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    io.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_load_npy_refuses_pickled_objects(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="never unpickles"):
        io.load_npy(path)


def test_written_files_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        with io.NpyStreamWriter(tmp_path / "b.npy", "int32") as writer:
            writer.write(np.arange(2))
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o644"}


def test_reasons_drop_escape_codes_and_cut_at_a_word():
    from nmkit.core.errors import reason

    text = "\x1b[31mError(s) in loading state_dict: Missing key(s) in state_dict: alpha, beta, gamma\x1b[0m"
    assert reason(RuntimeError(text), 40) == "Error(s) in loading state_dict:..."
    assert reason(RuntimeError(""), 40) == "RuntimeError"
