"""nmkit train-snn end to end: train then sample, the non-spiking baseline, an interrupted run resumed to the
same result, a real Ctrl-C, two torchrun processes equal to one process, and bad input exiting 2."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.core.errors import NmkitError
from nmkit.core.snn import run as snn
from nmkit.core.snn.config import SnnConfig

runner = CliRunner()
TEXT = "the quick brown fox jumps over the lazy dog. " * 60
TINY = ["--d-model", "16", "--layers", "1", "--ctx", "16", "--batch-size", "4", "--set", "eval_every=3",
        "--set", "eval_windows=4", "--set", "dropout=0.1"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


def _train(args, out=None):
    extra = ["--out", str(out)] if out else []
    result = runner.invoke(app, ["train-snn", *TINY, *args, *extra, "--json", "-q"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["result"]


def test_train_then_sample_from_the_checkpoint(corpus, tmp_path):
    found = _train(["--data", str(corpus), "--steps", "6"], tmp_path / "run")
    assert [h["step"] for h in found["history"]] == [3, 6] and found["tokens_trained"] == 6 * 4 * 16
    assert 0 < found["test_bpc"] < 8 and len(found["spike_rates"]) == 1
    assert found["operations_per_token"]["macs"] == 13 * 16 * 16 + 16 * len(set(TEXT))
    written = {p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith(".")}
    assert {"checkpoint.pt", "curve.svg", "result.json", "recipe.yaml"} <= written
    streamed = runner.invoke(app, ["train-snn", "sample", "--checkpoint", str(tmp_path / "run"), "--prompt", "the ",
                                   "--length", "25", "-q"])
    assert streamed.exit_code == 0, streamed.output
    assert set(streamed.stdout.splitlines()[0]) <= set(TEXT) and "tokens/s" in streamed.stdout
    sampled = runner.invoke(app, ["train-snn", "sample", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"),
                                  "--prompt", "the ", "--length", "25", "--json", "-q"])
    text = json.loads(sampled.stdout)["result"]["text"]
    assert len(text) == 25 and streamed.stdout.startswith(text)  # same seed, same text; JSON is not mixed in


def test_the_rwkv_baseline_has_no_spikes(corpus):
    found = _train(["--data", str(corpus), "--steps", "3", "--baseline", "rwkv"])
    assert found["model"]["spiking"] is False and found["spike_rates"] == []
    assert found["operations_per_token"]["accumulates"] == 2 * 16  # two real-valued branches of width 16


def test_other_neurons_train_sample_and_resume_only_as_they_were_trained(corpus, tmp_path):
    found = _train(["--data", str(corpus), "--steps", "3", "--neuron", "signed-integer", "--set", "spike_levels=2",
                    "--learn-threshold", "--readout", "real"], tmp_path / "run")
    assert found["model"]["neuron"] == "signed-integer" and found["model"]["spike_levels"] == 2
    assert list(found["spike_rates"][0]) == ["lif_att"]  # the last channel mix reads out real values
    thresholds = snn.load_checkpoint(tmp_path / "run")[0]["model"]["blocks.0.thresholds.lif_att"]
    assert thresholds.shape == (16,) and not torch.equal(thresholds, torch.ones(16))  # learned
    sampled = runner.invoke(app, ["train-snn", "sample", "--checkpoint", str(tmp_path / "run"), "--length", "9",
                                  "--prompt", "a", "--json", "-q"])
    assert sampled.exit_code == 0 and len(json.loads(sampled.stdout)["result"]["text"]) == 9
    changed = runner.invoke(app, ["train-snn", *TINY, "--data", str(corpus), "--steps", "5", "--resume", "--out",
                                  str(tmp_path / "run"), "--neuron", "signed-integer", "--set", "spike_levels=2",
                                  "--readout", "real", "-q"])
    assert changed.exit_code == 2 and "learn_threshold True" in changed.stderr


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(corpus, tmp_path):
    straight = _train(["--data", str(corpus), "--steps", "7"], tmp_path / "straight")
    config = SnnConfig(data=str(corpus), d_model=16, layers=1, ctx=16, batch_size=4, steps=7, eval_every=3,
                       eval_windows=4, dropout=0.1, checkpoint_every=100)
    (tmp_path / "cut").mkdir()
    calls = []
    with pytest.raises(NmkitError, match="interrupted at step 4 of 7"):
        snn.train(config, tmp_path / "cut", "cpu", lambda n, info="": None, lambda: calls.append(1) or len(calls) == 4)
    resumed = _train(["--data", str(corpus), "--steps", "7", "--resume", "--set", "checkpoint_every=100"],
                     tmp_path / "cut")
    assert resumed["resumed_from"] == 4
    assert resumed["history"] == straight["history"] and resumed["test_bpc"] == straight["test_bpc"]


def _nmkit(args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "nmkit", "train-snn", *TINY, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_ctrl_c_stops_after_the_step_and_leaves_a_usable_checkpoint(corpus, tmp_path):
    out = tmp_path / "run"
    process = _nmkit(["--data", str(corpus), "--steps", "100000", "--set", "checkpoint_every=5", "--out", str(out),
                      "-q"])
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "continue with --resume" in stderr
    step = int(stderr.split("interrupted at step ")[1].split()[0])
    saved, _, _ = snn.load_checkpoint(out)
    assert saved["step"] == step >= 5


def test_two_torchrun_processes_train_like_one_process_with_their_global_batch(corpus, tmp_path):
    args = ["--data", str(corpus), "--steps", "4", "--set", "dropout=0", "--json", "-q"]
    one = _train([*args[:-2], "--batch-size", "4"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              "-m", "nmkit", "train-snn", *TINY, *args, "--batch-size", "2",
                              "--out", str(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    two = json.loads(process.stdout)["result"]
    assert two["processes"] == 2 and two["tokens_trained"] == one["tokens_trained"]
    for a, b in zip(two["history"], one["history"], strict=True):
        assert a["train_bpc"] == pytest.approx(b["train_bpc"], abs=1e-4)
    assert two["test_bpc"] == pytest.approx(one["test_bpc"], abs=1e-4)
    assert snn.load_checkpoint(tmp_path / "ddp")[0]["step"] == 4


def test_bad_input_gives_one_line_and_exit_2(corpus, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1") * 100)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    _train(["--data", str(corpus), "--steps", "1"], tmp_path / "done")
    tampered = torch.load(tmp_path / "done" / "checkpoint.pt", weights_only=True)
    tampered["model_config"]["tau"] = 0.0  # would divide by zero in the neuron
    torch.save(tampered, tmp_path / "tampered.pt")
    cases = (
        (["sample", "--checkpoint", str(tmp_path / "tampered.pt")], "tau 0.0"),
        (["--data", str(tmp_path / "empty.txt")], "empty"),
        (["--data", str(tmp_path / "latin1.txt")], "not UTF-8"),
        (["--data", str(tmp_path / "missing.txt")], "no such file"),
        (["--data", str(corpus), "--ctx", "5000"], "shorten the context"),
        (["--data", str(corpus), "--d-model", "0"], "d_model"),
        (["sample", "--checkpoint", str(tmp_path / "garbage.pt")], "cannot be loaded"),
        (["sample", "--checkpoint", str(tmp_path / "foreign.pt")], "not a train-snn checkpoint"),
        (["sample", "--checkpoint", str(tmp_path / "done"), "--prompt", "\u00e9"], "vocabulary"),
        (["sample"], "needs a checkpoint"),
        (["--data", str(corpus), "--ctx", "16", "--resume", "--out", str(tmp_path / "done")], "was trained with"),
        (["--data", str(corpus), "--ctx", "16", "--resume"], "needs --out"),
    )
    for args, message in cases:
        result = runner.invoke(app, ["train-snn", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_several_samples_at_once_and_ctrl_c_keeps_what_was_generated(corpus, tmp_path, monkeypatch):
    _train(["--data", str(corpus), "--steps", "3"], tmp_path / "run")
    sample = ["train-snn", "sample", "--checkpoint", str(tmp_path / "run"), "--prompt", "the ", "--length", "12"]
    batched = runner.invoke(app, [*sample, "--num-samples", "3", "-q"])
    assert batched.exit_code == 0, batched.output
    assert [line for line in batched.stdout.splitlines() if line.startswith("--- sample")] == \
        [f"--- sample {i} ---" for i in (1, 2, 3)]
    found = json.loads(runner.invoke(app, [*sample, "--num-samples", "3", "--json", "-q"]).stdout)["result"]
    assert found["samples"] == 3 and [len(t) for t in found["texts"]] == [12] * 3 and found["tokens"] == 36

    from nmkit.core.snn import sampling

    real_draw, calls = sampling.draw, []

    def interrupted_draw(probabilities, uniforms):  # Ctrl-C arrives while the 6th token is drawn
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_draw(probabilities, uniforms)

    monkeypatch.setattr(sampling, "draw", interrupted_draw)
    stopped = runner.invoke(app, [*sample, "--json", "-q"])
    assert stopped.exit_code == 130
    record = json.loads(stopped.stdout)
    assert record["status"].startswith("interrupted") and len(record["result"]["text"]) == 5


def test_a_finished_run_extended_with_more_steps_trains_on_from_its_learning_rate(corpus, tmp_path):
    first = _train(["--data", str(corpus), "--steps", "4"], tmp_path / "run")
    extended = _train(["--data", str(corpus), "--steps", "7", "--resume"], tmp_path / "run")
    assert first["steps"] == 4 and extended["resumed_from"] == 4 and extended["steps"] == 7
    assert [h["step"] for h in extended["history"]] == [3, 4, 6, 7]
    saved = snn.load_checkpoint(tmp_path / "run")[0]
    assert saved["schedule_start"][0] == 4 and saved["steps"] == 7
    shorter = runner.invoke(app, ["train-snn", *TINY, "--data", str(corpus), "--steps", "5", "--resume", "--out",
                                  str(tmp_path / "run"), "-q"])
    assert shorter.exit_code == 2 and "at step 7 already" in shorter.stderr


def test_an_extended_schedule_continues_from_the_current_rate_without_a_jump():
    from nmkit.core.snn.training import OptimConfig, learning_rate

    optim = OptimConfig(lr_init=1e-2, lr_final=1e-4)
    assert learning_rate(0, 10, optim) == 1e-2 and abs(learning_rate(10, 10, optim) - 1e-4) < 1e-15
    here = learning_rate(6, 10, optim)  # extended at step 6 to 20 steps in all
    rates = [learning_rate(s, 20, optim, (6, here)) for s in range(6, 21)]
    assert rates[0] == here and abs(rates[-1] - 1e-4) < 1e-15
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))  # decreasing: no jump back up
    done = learning_rate(10, 10, optim)  # a finished run extended trains on at lr_final
    assert all(abs(learning_rate(s, 15, optim, (10, done)) - 1e-4) < 1e-15 for s in range(10, 16))
