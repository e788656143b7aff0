"""The fuzz findings of issue 34, one test per numbered case: each failed before its fix (a segfault, a wrong
answer reported as ok, an internal error, or a message that named the wrong thing) and holds now."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch
from torch import nn

from nmkit.core.errors import InputError
from nmkit.core.linear.krylov import NotPositiveDefinite, pcg
from tests.cli.test_hostile import invoke, refused


def _tridiagonal(n: int = 6) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(scipy.sparse.diags([[-1.0] * (n - 1), [2.5] * n, [-1.0] * (n - 1)], [-1, 0, 1]))


def _mtx(path, banner: str, size: str, entries: list[str]):
    path.write_text(f"%%MatrixMarket matrix coordinate {banner}\n{size}\n" + "\n".join(entries) + "\n")
    return path


# 1. Sparse index arrays are checked before compiled code reads them -------------------------------------------


@pytest.mark.parametrize("damage", ["column beyond the shape", "negative column", "indptr falls"])
def test_csr_with_indices_outside_the_shape_is_refused_not_a_segfault(tmp_path, damage):
    matrix = _tridiagonal()
    if damage == "column beyond the shape":
        matrix.indices[3] = 1000
    elif damage == "negative column":
        matrix.indices[3] = -5
    else:
        matrix.indptr[2], matrix.indptr[3] = matrix.indptr[3], matrix.indptr[2]
    scipy.sparse.save_npz(tmp_path / "A.npz", matrix, compressed=False)
    refused(invoke("solve-linear", "solve", "--matrix", tmp_path / "A.npz", "--method", "cg", "-q"),
            "A.npz", "inconsistent sparse structure")
    folder = tmp_path / "sequence"
    folder.mkdir()
    scipy.sparse.save_npz(folder / "A_0.npz", matrix, compressed=False)
    np.save(folder / "b_0.npy", np.ones(6))
    refused(invoke("relax-sor", "--sequence", "files", "--path", folder, "-q"), "A_0.npz",
            "inconsistent sparse structure")


def test_a_csr_stack_with_a_column_beyond_the_shape_is_refused(tmp_path):
    matrix = _tridiagonal()
    arrays = {f"A_0.{part}": getattr(matrix, part) for part in ("data", "indices", "indptr")}
    arrays["A_0.indices"] = arrays["A_0.indices"].copy()
    arrays["A_0.indices"][0] = 99
    np.savez(tmp_path / "stack.npz", **arrays, **{"A_0.shape": np.array([6, 6]), "b_0": np.ones(6)})
    refused(invoke("relax-sor", "--sequence", "files", "--path", tmp_path / "stack.npz", "-q"), "A_0")


# 2. Convergence is judged on the true residual; CG refuses an indefinite matrix -------------------------------


def test_an_indefinite_pattern_matrix_is_refused_not_reported_converged(tmp_path):
    """The pattern matrix (ones where entries are listed) below is indefinite; CG's recurrence used to reach tol
    while b - A x stayed at 1.4 ||b||, and the run said converged."""
    rng = np.random.default_rng(30)
    n = int(rng.integers(3, 60))
    a = scipy.sparse.random(n, n, density=rng.uniform(0.05, 0.5), random_state=30, format="csr")
    a.data[:] = 1
    a = ((a + a.T + scipy.sparse.eye(n)) > 0).astype(float)
    assert np.linalg.eigvalsh(a.toarray()).min() < 0
    scipy.io.mmwrite(tmp_path / "A.mtx", scipy.sparse.tril(a).tocoo(), symmetry="symmetric", field="pattern")
    line = refused(invoke("solve-linear", "solve", "--matrix", tmp_path / "A.mtx", "--method", "cg", "-q"),
                   "A.mtx")
    assert "not positive definite" in line
    with pytest.raises(NotPositiveDefinite):
        pcg(a, rng.random(n), tol=1e-6, max_iter=10 * n)


@pytest.mark.parametrize("tol", [1e-10, 1e-12])
def test_converged_always_means_the_true_residual_met_tol(tol):
    """On an SPD matrix of condition 1e6 CG's recurrence drifts below b - A x: it used to stop at a recurrence of
    8.6e-11 with a true residual of 1.9e-10 (tol 1e-10) and call that converged. Now the true residual decides;
    a solve restarted from it reaches 1e-10, and 1e-12 is out of float64's reach here and says so."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    a = (q * np.logspace(0, 6, 100)) @ q.T
    matrix = scipy.sparse.csr_matrix((a + a.T) / 2)
    b = rng.standard_normal(100)
    solve = pcg(matrix, b, tol=tol, max_iter=3000)
    true = solve.true_relative_residual(matrix, b)
    assert solve.converged == (true <= tol) and solve.converged == (tol == 1e-10)
    assert solve.history[-1] == pytest.approx(true, rel=0.5)


# 3. Symmetric Matrix Market files store one triangle ----------------------------------------------------------


@pytest.mark.parametrize("entries", [["1 1 4", "2 2 4", "2 1 1", "1 2 1"], ["1 1 4", "2 2 4", "2 1 1", "2 1 1"],
                                     ["1 1 4", "1 1 4", "2 2 4"]])
def test_a_symmetric_file_with_both_triangles_or_repeats_is_refused(tmp_path, entries):
    path = _mtx(tmp_path / "A.mtx", "real symmetric", "2 2 4" if len(entries) == 4 else "2 2 3", entries)
    refused(invoke("solve-linear", "solve", "--matrix", path, "--method", "cg", "-q"), "A.mtx",
            "is given more than once")


def test_a_symmetric_file_with_one_triangle_solves(tmp_path):
    path = _mtx(tmp_path / "A.mtx", "real symmetric", "2 2 3", ["1 1 4", "2 2 4", "2 1 1"])
    result = invoke("solve-linear", "solve", "--matrix", path, "--method", "cg", "-q", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["solves"][0]["true_relative_residual"] < 1e-6


# 4. NaN weights in a safetensors checkpoint ------------------------------------------------------------------


def test_nan_weights_in_a_safetensors_checkpoint_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"layer.weight": torch.tensor([[1.0, float("nan")], [2.0, 3.0]])}, tmp_path / "m.safetensors")
    refused(invoke("prune", tmp_path / "m.safetensors", "--sparsity", "0.5", "-q"), "m.safetensors",
            "NaN or infinite")


# 5 and 11. A TorchScript model whose outputs do not fit the data ----------------------------------------------


class _Net(nn.Module):
    def __init__(self, outputs: int = 10, how: str = "logits") -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, outputs)
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(self.act(self.fc1(x.view(x.size(0), -1))))
        if self.how == "3-d":
            return y.unsqueeze(1)
        if self.how == "nan":
            return y * float("nan")
        if self.how == "raises":
            raise RuntimeError("broken forward")
        return y


class _TupleNet(_Net):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc2(self.act(self.fc1(x.flatten(1))))
        return y, y


def _script(tmp_path, module: nn.Module, name: str):
    torch.manual_seed(0)
    path = tmp_path / f"{name}.ts"
    torch.jit.script(module).save(str(path))
    return path


@pytest.mark.parametrize("command", ["prune", "attack"])
@pytest.mark.parametrize(("module", "message"), [
    (_Net(how="3-d"), "outputs shape [8, 1, 10] for 8 digits inputs"),
    (_Net(how="nan"), "outputs NaN"),
    (_Net(outputs=3), "has 3 outputs, but digits has 10 classes"),
    (_TupleNet(), "returns a tuple, not a tensor"),
])
def test_outputs_that_are_not_logits_for_the_data_are_refused(tmp_path, command, module, message):
    path = _script(tmp_path, module, "model")
    refused(invoke(command, path, "--out", tmp_path / "out", "-q"), "model.ts", message)


def test_a_forward_that_raises(tmp_path):
    """attack needs the forward: exit 2. Magnitude pruning needs only the weights: it prunes and says why there
    is no accuracy."""
    path = _script(tmp_path, _Net(how="raises"), "model")
    refused(invoke("attack", path, "-q"), "model.ts", "its forward fails on digits inputs")
    result = invoke("prune", path, "--sparsity", "0.5", "-q", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["result"]
    assert record["dense_accuracy"] is None and "its forward fails" in record["notes"][0]
    refused(invoke("prune", path, "--method", "mfac", "--sparsity", "0.5", "-q"), "its forward fails")


# Also: a scripted forward that flattens before its first Linear ----------------------------------------------


def test_attack_takes_a_scripted_classifier_that_flattens_in_forward(tmp_path):
    torch.manual_seed(0)
    net = _Net()
    from nmkit.core.models import digits_tensors

    x, y = digits_tensors("train")
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()
    path = tmp_path / "flat.ts"
    torch.jit.script(net.eval()).save(str(path))
    result = invoke("attack", path, "-k", "2", "--count", "8", "-q", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["success_rate"] > 0.5


# 7, 16, 18. Hugging Face folders and safetensors headers -------------------------------------------------------


def _hf_folder(tmp_path, weight_map) -> object:
    from safetensors.torch import save_file

    folder = tmp_path / "hf"
    folder.mkdir()
    save_file({"a.weight": torch.ones(4, 4), "b.weight": torch.ones(4, 4)}, folder / "model-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text(weight_map if isinstance(weight_map, str) else
                                                          json.dumps({"weight_map": weight_map}))
    return folder


@pytest.mark.parametrize(("weight_map", "message"), [
    ({"a.weight": "model-00001.safetensors", "b.weight": "model-00001.safetensors",
      "ghost.weight": "model-00001.safetensors"}, "lists 1 tensor(s) in shards that do not hold them"),
    ({"a.weight": "model-00001.safetensors"}, "does not list every tensor of model-00001.safetensors"),
    ({"a.weight": "../outside.safetensors"}, "names a shard outside the folder"),
    ({"a.weight": "model-00002.safetensors"}, "names a shard that is not in the folder"),
    ("{{{ not json", "not a shard index"),
    (json.dumps({"weight_map": ["a"]}), "not a shard index"),
])
def test_a_malformed_shard_index_is_named(tmp_path, weight_map, message):
    folder = _hf_folder(tmp_path, weight_map)
    refused(invoke("prune", folder, "--sparsity", "0.5", "-q"), "model.safetensors.index.json", message)


def test_an_index_without_its_shards_names_the_index(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "x.safetensors"}}))
    refused(invoke("prune", folder, "--sparsity", "0.5", "-q"), "index.json", "not in the folder")


def test_an_unknown_safetensors_dtype_is_not_echoed(tmp_path):
    header = json.dumps({"a": {"dtype": "CANARY7731", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    line = refused(invoke("prune", tmp_path / "m.safetensors", "-q"), "m.safetensors", "F32, F16, BF16")
    assert "CANARY" not in line


# 7 and 19. relax-sor sequences: gaps and right-hand-side shapes ----------------------------------------------


def _sequence_folder(tmp_path, times, rhs_shape=(6,)):
    folder = tmp_path / "seq"
    folder.mkdir()
    for t in times:
        scipy.sparse.save_npz(folder / f"A_{t}.npz", _tridiagonal())
        np.save(folder / f"b_{t}.npy", np.ones(rhs_shape))
    return folder


def test_a_sequence_with_a_gap_is_refused(tmp_path):
    refused(invoke("relax-sor", "--sequence", "files", "--path", _sequence_folder(tmp_path, [0, 5]), "-q"),
            "no system t = 1", "without gaps")


def test_a_sequence_may_start_at_any_t(tmp_path):
    result = invoke("relax-sor", "--sequence", "files", "--path", _sequence_folder(tmp_path, [3, 4, 5]), "-q",
                    "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["steps"] == 3


def test_a_right_hand_side_is_reported_with_its_own_shape(tmp_path):
    refused(invoke("relax-sor", "--sequence", "files", "--path", _sequence_folder(tmp_path, [0], (3, 2)), "-q"),
            "b_0 has shape (3, 2)", "6 entries")


def test_sparse_structure_check_accepts_what_scipy_writes(tmp_path):
    from nmkit.core import io

    matrix = _tridiagonal()
    for fmt in ("csr", "csc", "coo", "bsr", "dia"):
        scipy.sparse.save_npz(tmp_path / f"{fmt}.npz", matrix.asformat(fmt))
        assert (io.read_sparse_npz(tmp_path / f"{fmt}.npz").toarray() == matrix.toarray()).all()
    with pytest.raises(InputError):
        coo = matrix.tocoo()
        np.savez(tmp_path / "bad.npz", row=coo.row, col=coo.col + 10, data=coo.data, shape=np.array([6, 6]),
                 format=np.array("coo"))
        io.read_sparse_npz(tmp_path / "bad.npz")


# 6, 10, 14, 15, 19. robust-opt reference CSVs -----------------------------------------------------------------


@pytest.fixture
def knapsack(tmp_path):
    path = tmp_path / "kp.txt"
    path.write_text("2 10 1\n5 1 1 3 1\n4 1 1 3 1\n")
    return path


def _solve_against(knapsack, text: str, encoding: str = "utf-8"):
    reference = knapsack.parent / "ref.csv"
    reference.write_text(text, encoding=encoding)
    return invoke("robust-opt", "solve", knapsack, "--reference", reference, "-q", "--json")


@pytest.mark.parametrize(("text", "message"), [
    ("instance,best_known_profit\nkp,5\nkp,6\n", "lines 2 and 3 give different values for one instance"),
    ("instance,best_known_profit,best_known_profit\nkp,5,6\n", "column 'best_known_profit' appears more than once"),
    ("instance,best_known_profit\nkp,0\n", "line 2: best_known_profit must be a profit in (0, 1e+15]"),
    ("instance,best_known_profit\nkp,-3\n", "must be a profit"),
    ("instance,best_known_profit\nkp,1e308\n", "must be a profit"),
    ("instance,best_known_profit\nkp,5,7\n", "line 2 has 3 fields, the header 2"),
    ("instance,best_known_profit\nkp,1_000\n", "line 2: best_known_profit is not a number"),
    ("instance,best_known_profit\nkp,inf\n", "is not a number"),
])
def test_conflicting_or_impossible_references_are_refused(knapsack, text, message):
    refused(_solve_against(knapsack, text), "ref.csv", message)


def test_references_read_as_excel_writes_them(knapsack):
    """A byte-order mark, a repeated identical row, and an unusable gap column are fine."""
    result = _solve_against(knapsack, "instance,best_known_profit,x_gap_percent\nkp,5,n/a\nkp,5,n/a\n",
                            encoding="utf-8-sig")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    row = record["result"]["instances"][0]
    assert row["reference"] == 5 and row["gap_percent"] == pytest.approx(100 * (5 - row["profit"]) / 5)
    assert record["status"] == "ok"


def test_a_large_reference_keeps_only_the_instances_solved(tmp_path):
    import tracemalloc

    from nmkit.core.robust.batch import read_reference

    rows = "".join(f"inst{i},{1 + i % 997},{i % 7}\n" for i in range(200_000))
    (tmp_path / "big.csv").write_text("instance,best_known_profit,neur2ro_gap_percent\n" + rows)
    tracemalloc.start()
    found = read_reference(tmp_path / "big.csv", "best_known_profit", {"inst5", "inst199999", "absent"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == {"inst5": {"best_known_profit": 6.0, "neur2ro_gap_percent": 5.0},
                     "inst199999": {"best_known_profit": 1 + 199999 % 997, "neur2ro_gap_percent": 199999 % 7}}
    assert peak < 20 << 20  # the 6 MB file is streamed, not held as 200,000 dicts


def test_every_null_is_named_in_status():
    from nmkit.cli.common import Outcome, _status
    from nmkit.core.report import non_finite_paths

    summary = {"rows": [{"gap": float("nan")} for _ in range(15)]}
    status = _status(Outcome(summary=summary), non_finite_paths(summary, "result"))
    assert all(f"result.rows[{i}].gap" in status for i in range(15))


# 7, 13. Instance files: magnitudes and declared counts --------------------------------------------------------


def test_a_profit_beyond_the_solver_range_is_refused(tmp_path):
    (tmp_path / "kp.txt").write_text("2 10 1\n1e300 1 1 3 1\n4 1 1 3 1\n")
    refused(invoke("robust-opt", "solve", tmp_path / "kp.txt", "-q"), "kp.txt", "line 2",
            "beyond 1e+12 in magnitude")


def test_a_capital_budget_declaring_1e8_projects_is_refused_at_once(tmp_path):
    import resource
    import time

    (tmp_path / "cb.txt").write_text("1 100000000 4 10 0\n1 2\n3 4\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    refused(invoke("robust-opt", "solve", tmp_path / "cb.txt", "--problem", "capital_budgeting", "-q"), "cb.txt",
            "expected 100000000 costs")
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: not a list of 2e8 sizes


# 7, 8, 9, 12, 17. compress-pc's images, arrays and outputs ---------------------------------------------------


ONE_EPOCH = ("--set", "minibatch_epochs=1", "--set", "full_batch_epochs=1")


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares width x height grey pixels (its data is a few bytes: a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("side", "limit", "message"), [
    (50_000, [], "decompression-bomb limit"),
    (6_000, ["--max-memory", "100M"], "declares 6000x6000 pixels"),
])
def test_image_bombs_are_refused_before_decoding(tmp_path, side, limit, message):
    (tmp_path / "images").mkdir()
    _png_header_only(tmp_path / "images" / "a.png", side, side)
    refused(invoke("compress-pc", "train", "--data", tmp_path / "images", *limit, "-q"), "a.png", message)


def test_a_pgm_comment_after_maxval_is_not_read_as_pixels(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.pgm").write_bytes(b"P5\n2 2\n255\n# note\n" + bytes([1, 2, 3, 4]))
    refused(invoke("compress-pc", "train", "--data", tmp_path / "images", "-q"), "a.pgm",
            "a comment after maxval")


def test_an_array_with_no_values_is_refused(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((50, 0), np.uint8))
    refused(invoke("compress-pc", "train", "--data", tmp_path / "empty.npy", "-q"), "empty.npy",
            "holds no values")


def test_writing_into_a_missing_folder_names_it(tmp_path):
    model = tmp_path / "model"
    assert invoke("compress-pc", "train", "--out", model, *ONE_EPOCH, "-q").exit_code == 0
    assert invoke("compress-pc", "encode", "digits", "--model", model, "-o", tmp_path / "d.nmpc", "-q").exit_code == 0
    refused(invoke("compress-pc", "decode", tmp_path / "d.nmpc", "--model", model, "-o",
                   tmp_path / "missing" / "x.npy", "-q"), "does not exist")
    assert not (tmp_path / "missing").exists()


def _tiff_that_warns(path) -> None:
    """A small TIFF damaged (seeded) until Pillow warns while reading it."""
    import io
    import random
    import warnings

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="TIFF", description="x" * 33)
    rng = random.Random(0)
    for _ in range(2000):
        damaged = bytearray(buffer.getvalue())
        for _ in range(2):
            damaged[rng.randrange(8, len(damaged))] = rng.randrange(256)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                np.asarray(Image.open(io.BytesIO(bytes(damaged))))
            except Exception:  # noqa: BLE001, S110 - looking for a file that warns, whatever else it does
                pass
        if caught:
            path.write_bytes(bytes(damaged))
            return
    raise AssertionError("no damaged TIFF made Pillow warn")


def test_a_damaged_tiff_gives_one_line_without_pillow_warnings(tmp_path):
    (tmp_path / "images").mkdir()
    _tiff_that_warns(tmp_path / "images" / "a.tif")
    # a real process: pytest would catch the warnings that reach a user's terminal
    result = subprocess.run([sys.executable, "-m", "nmkit", "compress-pc", "train", "--data", tmp_path / "images",
                             *ONE_EPOCH, "-q"], capture_output=True, text=True, timeout=120)
    assert "Warning" not in result.stderr and "site-packages" not in result.stderr, result.stderr
    assert result.returncode in (0, 2) and len(result.stderr.strip().splitlines()) <= 1, result.stderr


def test_relax_sor_refuses_an_indefinite_system_instead_of_a_false_convergence(tmp_path):
    """SSOR-PCG had the same recurrence-only stopping rule as CG (case 2)."""
    folder = tmp_path / "seq"
    folder.mkdir()
    indefinite = scipy.sparse.csr_matrix(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 2.0], [0.0, 2.0, 1.0]]))
    scipy.sparse.save_npz(folder / "A_0.npz", indefinite)
    np.save(folder / "b_0.npy", np.array([1.0, -1.0, 2.0]))
    refused(invoke("relax-sor", "--sequence", "files", "--path", folder, "--solver", "ssor-pcg", "-q"),
            "system 0", "not positive definite")
