"""Tensor checkpoints pruned as streams: the same bytes as pruning everything in memory and saving it with
safetensors, peak memory of a few tensors, bad shards refused before anything is written."""

from __future__ import annotations

import io as stdlib_io
import json
import random
import weakref

import pytest
import torch
from safetensors.torch import load_file, save, save_file

from nmkit.core.errors import InputError
from nmkit.core.prune import masks, shard_io
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.tensors import prune_checkpoint


def _llama_folder(folder, dtype=torch.float16, seed=0):
    """A small Llama-shaped sharded checkpoint: 3 shards, an index, a config; weights with ties and -0.0."""
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir()
    weight = lambda *shape: (torch.round(torch.randn(*shape, generator=generator) * 40) / 256).to(dtype)  # noqa: E731
    shards = [{"model.embed_tokens.weight": weight(50, 16)}, {}, {"lm_head.weight": weight(50, 16),
                                                               "model.norm.weight": torch.ones(16, dtype=dtype)}]
    for layer in range(3):
        for part, shape in (("self_attn.q_proj", (16, 16)), ("self_attn.k_proj", (8, 16)), ("mlp.up_proj", (40, 16)),
                            ("mlp.down_proj", (16, 40))):
            shards[layer % 2 if layer < 2 else 1][f"model.layers.{layer}.{part}.weight"] = weight(*shape)
        shards[1][f"model.layers.{layer}.input_layernorm.weight"] = torch.ones(16, dtype=dtype)
    shards[0]["model.layers.0.self_attn.q_proj.weight"][0, :4] = -0.0
    weight_map = {}
    for i, tensors in enumerate(shards, 1):
        name = f"model-{i:05d}-of-00003.safetensors"
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(tensors, name)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text('{"model_type": "llama"}')
    return folder


def _in_memory_reference(folder, method: str, sparsity: float, seed: int = 0) -> dict[str, bytes]:
    """Brute force: every shard loaded, the chosen tensors' scores concatenated and stably sorted (ties pruned in
    tensor then index order), then saved with safetensors' own ``save``."""
    files = sorted(folder.glob("*.safetensors"))
    loaded = {f.name: load_file(str(f)) for f in files}
    chosen = [(f, name) for f, tensors in loaded.items() for name, t in tensors.items()
              if t.dim() >= 2 and "embed" not in name and "lm_head" not in name]
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for f, name in chosen:
        w = loaded[f][name]
        if method == "global-mp":
            scores.append(w.abs().float().reshape(-1))
        elif method == "lamp":
            scores.append(masks.lamp_scores([w])[0].reshape(-1))
        else:
            scores.append(torch.rand(w.shape, generator=generator).reshape(-1))
    flat = torch.cat(scores)
    prune = torch.zeros(flat.numel(), dtype=torch.bool)
    prune[flat.argsort(stable=True)[:round(sparsity * flat.numel())]] = True
    for (f, name), part in zip(chosen, prune.split([s.numel() for s in scores]), strict=True):
        loaded[f][name] = loaded[f][name].masked_fill(part.view(loaded[f][name].shape), 0)
    return {f: save(tensors, metadata={"format": "pt"}) for f, tensors in loaded.items()}


def _prune(model, tmp_path, method="global-mp", sparsities=(0.5,), seed=0):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    config = PruneConfig(model=model, method=method, final_sparsity=list(sparsities), seed=seed)
    written = {}
    folders = {s: out / f"s{s:.2f}" for s in sparsities}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    result = prune_checkpoint(config, folders.get, lambda target, files, _: written.update({target: files}))
    return result, folders, written


@pytest.mark.parametrize("method", ["global-mp", "lamp", "random"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_streamed_shards_are_byte_identical_to_pruning_in_memory(tmp_path, method, dtype):
    model = _llama_folder(tmp_path / "llama", dtype)
    sparsities = (0.3, 0.5, 0.9)
    result, folders, written = _prune(model, tmp_path, method, sparsities, seed=3)
    for sparsity in sparsities:
        expected = _in_memory_reference(model, method, sparsity, seed=3)
        for name, blob in expected.items():
            assert (folders[sparsity] / name).read_bytes() == blob, (sparsity, name)
        assert (folders[sparsity] / "config.json").read_bytes() == (model / "config.json").read_bytes()
        assert sorted(p.name for p in written[sparsity]) == sorted(p.name for p in model.iterdir())
    total = sum(layer["weights"] for layer in result.runs[0].layers)
    if method != "random":  # the weights already zero rank first, so the zeros are exactly the budget
        assert [total - sum(layer["nonzero"] for layer in run.layers) for run in result.runs] == \
            [round(s * total) for s in sparsities]


def test_layer_mp_prunes_each_tensor_to_its_own_count(tmp_path):
    model = _llama_folder(tmp_path / "llama")
    result, folders, _ = _prune(model, tmp_path, "layer-mp", (0.6,))
    pruned = {k: v for f in sorted(folders[0.6].glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    dense = {k: v for f in sorted(model.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    for name in result.prunable:
        w = dense[name].reshape(-1)
        order = w.abs().float().argsort(stable=True)[:round(0.6 * w.numel())]
        assert torch.equal(pruned[name].reshape(-1), w.index_fill(0, order, 0)), name
    assert torch.equal(pruned["model.embed_tokens.weight"], dense["model.embed_tokens.weight"])


def test_streaming_holds_one_tensor_not_the_checkpoint(tmp_path, monkeypatch):
    """Every tensor read is counted while alive: a few at once (the one being pruned, the next being read ahead,
    the one being written, the loop's last), never a shard's 13 or the checkpoint's 17."""
    model = _llama_folder(tmp_path / "llama", torch.float32)
    alive, most = set(), [0]
    read = shard_io.read_tensor

    def tracked(handle, entry):
        tensor = read(handle, entry)
        key = id(tensor)
        alive.add(key)
        most[0] = max(most[0], len(alive))
        weakref.finalize(tensor, alive.discard, key)
        return tensor

    monkeypatch.setattr(shard_io, "read_tensor", tracked)
    _prune(model, tmp_path, "global-mp", (0.5, 0.8))
    assert most[0] <= 4


def test_the_writer_lays_out_files_as_safetensors_does():
    rng = random.Random(0)
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool, torch.uint8, torch.float64]
    for _ in range(25):
        tensors = {rng.choice(["a", "b.weight", "ü.ñ", "layers.10.mlp", "layers.9.mlp", 'x"q']) + str(i):
                   (torch.randn([rng.randint(0, 4) for _ in range(rng.randint(0, 3))]) * 9).to(rng.choice(dtypes))
                   for i in range(rng.randint(1, 8))}
        metadata = rng.choice([None, {}, {"format": "pt"}])
        blob = save(tensors, metadata=metadata)
        handle = stdlib_io.BytesIO(blob)
        handle.name = "x.safetensors"
        length = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + length])
        entries = [shard_io._entry(name, header[name], 8 + length) for name in sorted(tensors)]
        out = stdlib_io.BytesIO()
        with shard_io.ShardWriter(out, entries, metadata) as writer:
            for entry in reversed(entries):
                tensor = shard_io.read_tensor(handle, entry)
                assert torch.equal(tensor, tensors[entry.name])
                writer.write(entry.name, tensor)
        assert out.getvalue() == blob


def test_a_shard_whose_declared_sizes_exceed_the_file_is_refused_before_anything_is_written(tmp_path):
    model = _llama_folder(tmp_path / "llama")
    last = sorted(model.glob("*.safetensors"))[-1]
    last.write_bytes(last.read_bytes()[:-8])
    with pytest.raises(InputError, match="model-00003-of-00003.safetensors: not a readable safetensors file"):
        _prune(model, tmp_path)
    assert not any((tmp_path / "out").rglob("*.safetensors"))


def test_nan_in_the_last_shard_is_found_before_the_first_is_written(tmp_path):
    model = _llama_folder(tmp_path / "llama", torch.float32)
    last = sorted(model.glob("*.safetensors"))[-1]
    tensors = load_file(str(last))
    tensors["lm_head.weight"][3, 3] = float("nan")
    save_file(tensors, str(last))
    with pytest.raises(InputError, match="NaN or infinite"):
        _prune(model, tmp_path)
    assert not any((tmp_path / "out").rglob("*.safetensors"))


def test_8_bit_float_tensors_are_left_out_and_kept_as_they_are(tmp_path):
    quantised = (torch.randn(8, 8) * 0.1).to(torch.float8_e4m3fn)
    save_file({"a.weight": quantised, "b.weight": torch.randn(8, 8)}, str(tmp_path / "m.safetensors"))
    result, folders, _ = _prune(tmp_path / "m.safetensors", tmp_path)
    pruned = load_file(str(folders[0.5] / "m.safetensors"))
    assert result.left_out["a.weight"] == "8-bit float (already quantised)"
    assert torch.equal(pruned["a.weight"].view(torch.uint8), quantised.view(torch.uint8))
    assert int((pruned["b.weight"] == 0).sum()) == 32
