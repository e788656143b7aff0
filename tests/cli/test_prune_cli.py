"""nmkit prune end to end: saved models reproduce their accuracy, formats round-trip, inputs stay untouched,
bad input exits 2 with one line."""

import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.core import models
from nmkit.core.prune.training import accuracy

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model, _ = models.train_on_digits("mlp", epochs=15)
    torch.save(model.state_dict(), folder / "state.pt")
    torch.jit.save(torch.jit.script(model), str(folder / "scripted.pt"))
    torch.save(model, folder / "module.pt")
    return folder


def invoke(*args):
    result = runner.invoke(app, ["prune", *map(str, args), "--json", "-q"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["result"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_saved_pruned_model_reproduces_its_reported_accuracy(trained, tmp_path):
    before = digest(trained / "state.pt")
    record = invoke(trained / "state.pt", "--architecture", "mlp", "--sparsity", "0.8", "--fine-tune-epochs", "1",
                    "--out", tmp_path / "p")
    assert digest(trained / "state.pt") == before  # the input is never modified
    reloaded = models.load_model(tmp_path / "p" / "model.pt", architecture="mlp")
    run = record["runs"][0]
    assert accuracy(reloaded, *models.digits_tensors("test")) == run["accuracy_fine_tuned"]
    weights = [m.weight for m in reloaded.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(run["sparsity"])


def test_torchscript_in_torchscript_out_and_csr_export(trained, tmp_path):
    record = invoke(trained / "scripted.pt", "--sparsity", "0.9", "--export-csr", "--out", tmp_path / "p")
    assert record["model_format"] == "torchscript"
    scripted = torch.jit.load(str(tmp_path / "p" / "model.pt"))
    assert accuracy(scripted, *models.digits_tensors("test")) == record["runs"][0]["accuracy_pruned"]
    parts = torch.load(tmp_path / "p" / "linear_csr.pt", weights_only=True)
    dense = torch.sparse_csr_tensor(*(parts["head.weight"][k] for k in ("crow_indices", "col_indices", "values")),
                                    size=tuple(parts["head.weight"]["size"].tolist()), check_invariants=True).to_dense()
    assert torch.equal(dense, scripted.head.weight.detach())


def test_a_sweep_writes_a_csv_and_a_plot(tmp_path):
    record = invoke("--sparsity", "0.5,0.9", "--method", "lamp", "--out", tmp_path / "s")
    assert [r["target"] for r in record["runs"]] == [0.5, 0.9]
    assert len((tmp_path / "s" / "sweep.csv").read_text().splitlines()) == 3
    assert (tmp_path / "s" / "sweep.svg").read_text().startswith("<svg")
    for run in record["runs"]:  # every sparsity of the sweep is written, not only the last
        pruned = models.load_model(tmp_path / "s" / f"model-s{run['target']:.2f}.pt", architecture="mlp")
        weights = [m.weight for m in pruned.modules() if isinstance(m, torch.nn.Linear)]
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        assert zeros == pytest.approx(run["sparsity"])
    assert not (tmp_path / "s" / "model.pt").exists()


def gpt2_style(folder, layers=2, d=32, vocab=300, dtype=torch.float16):
    """A GPT-2-style checkpoint: Hugging Face key names, random weights (nothing downloaded), fp16."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    rand = lambda *shape: (torch.randn(*shape, generator=generator) * 0.02).to(dtype)  # noqa: E731
    ones, zeros = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
    tensors = {"transformer.wte.weight": rand(vocab, d), "transformer.wpe.weight": rand(64, d),
               "transformer.ln_f.weight": ones, "transformer.ln_f.bias": zeros}
    for i in range(layers):
        p = f"transformer.h.{i}."
        tensors |= {p + "ln_1.weight": ones, p + "ln_1.bias": zeros, p + "attn.c_attn.weight": rand(d, 3 * d),
                    p + "attn.c_attn.bias": rand(3 * d), p + "attn.c_proj.weight": rand(d, d),
                    p + "attn.c_proj.bias": rand(d), p + "mlp.c_fc.weight": rand(d, 4 * d),
                    p + "mlp.c_fc.bias": rand(4 * d), p + "mlp.c_proj.weight": rand(4 * d, d)}
    folder.mkdir()
    save_file({k: v.clone() for k, v in tensors.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    return tensors


def test_safetensors_checkpoints_are_pruned_without_an_architecture(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    original = gpt2_style(tmp_path / "gpt2")
    record = invoke(tmp_path / "gpt2", "--sparsity", "0.5", "--out", tmp_path / "out")
    pruned = load_file(str(tmp_path / "out" / "model.safetensors"))
    with safe_open(str(tmp_path / "out" / "model.safetensors"), framework="pt") as handle:
        assert handle.metadata() == {"format": "pt"}
    assert pruned.keys() == original.keys() and all(pruned[k].dtype == torch.float16 for k in pruned)
    matrices = [k for k in original if original[k].dim() == 2 and ".h." in k]
    assert sorted(record["pruned_parameters"]) == sorted(matrices)
    assert sum(int((pruned[k] == 0).sum()) for k in matrices) == round(0.5 * sum(original[k].numel()
                                                                                for k in matrices))
    for name in original.keys() - set(matrices):  # embeddings, norms, biases untouched
        assert torch.equal(pruned[name], original[name]) and name in record["left_out"]
    assert (tmp_path / "out" / "config.json").read_text() == '{"model_type": "gpt2"}'
    only_mlp = invoke(tmp_path / "gpt2" / "model.safetensors", "--include", r"mlp\.c_fc", "--sparsity", "0.5,0.9",
                      "--method", "lamp", "--out", tmp_path / "sweep")
    assert only_mlp["pruned_parameters"] == ["transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_fc.weight"]
    for target in (0.5, 0.9):
        swept = load_file(str(tmp_path / "sweep" / f"s{target:.2f}" / "model.safetensors"))
        assert float((swept["transformer.h.1.mlp.c_fc.weight"] == 0).float().mean()) == pytest.approx(target, abs=0.01)


def test_data_driven_methods_need_a_runnable_model(tmp_path):
    gpt2_style(tmp_path / "gpt2")
    result = runner.invoke(app, ["prune", str(tmp_path / "gpt2"), "--method", "mfac"])
    assert result.exit_code == 2 and "needs a runnable model" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["{folder}/none.pt"], "no such file"),
    (["{folder}/notes.txt"], "is not a model file (expected a TorchScript archive"),
    (["{folder}/module.pt"], "--trust-pickle"),
    (["--sparsity", "1.0"], "final_sparsity' expects values in [0, 1)"),
    (["--method", "magnitude"], "method"),
    (["{folder}/state.pt", "--architecture", "mlp", "--params", "re:conv.*"], "matches no Conv/Linear weight"),
    (["{folder}/state.pt", "--train"], "exclude each other"),
])
def test_bad_input_gives_one_line_and_exit_2(trained, args, message):
    (trained / "notes.txt").write_text("not a model")
    result = runner.invoke(app, ["prune", *(a.format(folder=trained) for a in args)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_pickled_modules_load_with_the_opt_in(trained):
    record = invoke(trained / "module.pt", "--trust-pickle", "--sparsity", "0.5")
    assert record["model_format"] == "module"


def test_resnet_state_dict_prunes_convs_only_and_counts_conv_flops_by_output_positions(tmp_path):
    torch.manual_seed(0)
    torch.save(models.resnet().state_dict(), tmp_path / "resnet.pt")
    record = invoke(tmp_path / "resnet.pt", "--architecture", "resnet", "--sparsity", "0.8")
    layers = {layer["name"]: layer for layer in record["runs"][0]["layers"]}
    assert "bn.weight" not in layers and "block2.shortcut.0.weight" in layers
    assert layers["stem.weight"]["flops_dense"] == 16 * 9 * 32 * 32  # 32x32 output positions
    assert layers["block3.conv2.weight"]["flops_dense"] == 64 * 64 * 9 * 8 * 8
    flops = sum(layer["flops"] for layer in layers.values()) / sum(layer["flops_dense"] for layer in layers.values())
    assert record["runs"][0]["flops_remaining"] == pytest.approx(flops)


def test_mfac_and_fine_tuning_work_on_torchscript_as_on_the_eager_model(tmp_path):
    """Defect (issue 22): a deep-copied ScriptModule's parameters are not leaves, so M-FAC's gradients were None
    (internal error) and fine-tuning silently changed nothing. TorchScript now prunes like the eager model."""
    model, _ = models.train_on_digits("mlp", epochs=3, seed=0)
    torch.jit.script(model).save(str(tmp_path / "m.ts"))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    settings = ["--method", "mfac", "--sparsity", "0.7", "--set", "fine_tune_epochs=1", "--set", "mfac.grads=16",
                "--set", "mfac.recomputations=2"]
    scripted = invoke(tmp_path / "m.ts", *settings)["runs"][0]
    eager = invoke(tmp_path / "m.pt", "--architecture", "mlp", *settings)["runs"][0]
    assert scripted["accuracy_pruned"] == pytest.approx(eager["accuracy_pruned"], abs=0.01)
    assert scripted["accuracy_fine_tuned"] == pytest.approx(eager["accuracy_fine_tuned"], abs=0.01)
    assert scripted["accuracy_fine_tuned"] != scripted["accuracy_pruned"]  # fine-tuning reached the weights


def test_magnitude_pruning_needs_no_data_that_fits_and_data_driven_methods_say_data(tmp_path):
    torch.jit.script(models.ZOO["lenet"]()).save(str(tmp_path / "lenet.pt"))  # takes 28x28; digits are 8x8
    record = invoke(tmp_path / "lenet.pt", "--sparsity", "0.5", "--out", tmp_path / "out")
    assert record["dense_accuracy"] is None and record["runs"][0]["sparsity"] == pytest.approx(0.5)
    assert any("accuracy not measured" in note and "--data" in note for note in record["notes"])
    refused = runner.invoke(app, ["prune", str(tmp_path / "lenet.pt"), "--method", "mfac"])
    assert refused.exit_code == 2 and "pass --data" in refused.stderr
