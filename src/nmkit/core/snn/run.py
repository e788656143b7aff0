"""``nmkit train-snn``'s two actions as library calls: train (with validation checks, atomic checkpoints, exact
resume, data parallelism under torchrun) and sample (RNN-mode generation from a checkpoint)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from nmkit.core import distributed, io
from nmkit.core.errors import InputError, Interrupted, RunError, reason
from nmkit.core.snn import step
from nmkit.core.snn.config import SnnConfig
from nmkit.core.snn.data import decode, encode, load_corpus, split
from nmkit.core.snn.model import ModelConfig, SpikeGPT
from nmkit.core.snn.report import operations_per_token
from nmkit.core.snn.sampling import generate
from nmkit.core.snn.training import OptimConfig, Trainer, evaluate
from nmkit.core.svg import line_chart

CHECKPOINT = "checkpoint.pt"
FORMAT = "nmkit train-snn checkpoint 1"
# what must not change between a run and its resumption (anything else would break exactness)
RUN_FIELDS = ("data", "layers", "d_model", "ctx", "baseline", "neuron", "spike_levels", "learn_threshold", "readout",
              "embedding", "tau", "batch_size", "steps", "lr_init", "lr_final",
              "grad_clip", "dropout", "seed")
# what a checkpoint written before the neuron fields existed was trained with
EARLIER_RUN_FIELDS = {"neuron": "binary", "spike_levels": 4, "learn_threshold": False, "readout": "spiking",
                      "embedding": "binary", "tau": 2.0}


def model_config_of(config: SnnConfig, vocab: int) -> ModelConfig:
    """The model a train run builds."""
    return ModelConfig(vocab, config.d_model, config.layers, config.baseline == "none", config.dropout, config.neuron,
                       config.spike_levels, config.learn_threshold, config.readout, config.embedding, config.tau)


def train(config: SnnConfig, out_dir: Path | None, device: str, advance: Callable[[int, str], None],
          should_stop: Callable[[], int]) -> dict:
    """Train; returns the summary (metrics, history, spike rates, operations). Writes checkpoint.pt and
    curve.svg into ``out_dir`` (process 0 only under torchrun)."""
    corpus = load_corpus(config.data)
    parts = {name: torch.from_numpy(blocks) for name, blocks in split(corpus.tokens, config.ctx, config.seed).items()}
    fingerprint = hashlib.sha256(corpus.tokens.tobytes()).hexdigest()[:16]
    device = distributed.join(device)
    try:
        trainer, history, losses = _trainer(config, corpus.vocab_size, fingerprint, out_dir, device)
        primary = trainer.rank == 0
        resumed_from = trainer.step if config.resume else None

        def save() -> None:
            state = {**trainer.checkpoint(), "format": FORMAT, "vocabulary": corpus.vocabulary,
                     "fingerprint": fingerprint, "run": {f: _plain(getattr(config, f)) for f in RUN_FIELDS},
                     "history": history, "losses_since_check": losses}
            if primary and out_dir is not None:
                io.atomic_write(out_dir / CHECKPOINT, lambda fh: torch.save(state, fh))

        advance(trainer.step, "")
        tokens_per_step = config.batch_size * trainer.world * config.ctx
        trained, seconds = 0, 0.0
        steps = trainer.train(parts["train"], config.batch_size, config.ctx, config.steps - trainer.step)
        while trainer.step < config.steps:
            start = time.perf_counter()
            losses.append(next(steps) / math.log(2))
            _stop_if_diverged(not math.isfinite(losses[-1]), trainer, config)
            seconds, trained = seconds + time.perf_counter() - start, trained + 1
            info = f"train {losses[-1]:.3f} BPC, {tokens_per_step * trained / seconds:,.0f} tokens/s"
            if trainer.step % config.eval_every == 0 or trainer.step == config.steps:
                valid = evaluate(trainer.model, parts["valid"], config.ctx, limit=config.eval_windows)[0] \
                    if primary else float("nan")
                history.append({"step": trainer.step, "train_bpc": float(np.mean(losses)), "valid_bpc": valid})
                losses = []
                _stop_if_diverged(primary and not math.isfinite(valid), trainer, config)
                info += f", valid {valid:.3f} BPC"
            advance(1, info)
            if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
                save()
            stop = should_stop()  # the signal that asked to stop, or 0
            if distributed.agree(bool(stop), trainer.device) and trainer.step < config.steps:
                save()
                where = f"{out_dir / CHECKPOINT} is current; continue with --resume" if out_dir else \
                    "nothing saved (no --out)"
                raise Interrupted(f"interrupted at step {trainer.step} of {config.steps}; {where}", stop or 2)
        if not primary:
            return {}
        if out_dir is not None and history:
            io.write_text(out_dir / "curve.svg", _curve(history))
        return {"processes": trainer.world, "resumed_from": resumed_from, "steps": trainer.step,
                "tokens_trained": trainer.step * tokens_per_step, "train_seconds": seconds,
                "tokens_per_second": tokens_per_step * trained / seconds if seconds else None,
                **_evaluation(trainer.model, parts, config.ctx), "history": history}
    finally:
        distributed.leave()


def _evaluation(model: SpikeGPT, parts: dict[str, torch.Tensor], context: int) -> dict:
    """Validation and test BPC over every window, the unigram entropy, spike rates and operations."""
    valid_bpc, _ = evaluate(model, parts["valid"], context)
    test_bpc, rates = evaluate(model, parts["test"], context)
    return {"model": {**asdict(model.config), "parameters": sum(p.numel() for p in model.parameters())},
            "valid_bpc": valid_bpc, "test_bpc": test_bpc, "unigram_bpc": unigram_entropy(parts["train"]),
            "spike_rates": rates if model.config.spiking else [],
            "operations_per_token": operations_per_token(model.config, rates)}


def _curve(history: list[dict]) -> str:
    steps = np.array([h["step"] for h in history])
    return line_chart(steps, {"train BPC": np.array([h["train_bpc"] for h in history]),
                              "validation BPC": np.array([h["valid_bpc"] for h in history])},
                      x_label="step", y_label="bits per character")


def unigram_entropy(tokens: torch.Tensor) -> float:
    """Entropy (bits) of the token frequencies: the BPC of a model that ignores context."""
    counts = torch.bincount(tokens.reshape(-1)).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum())


def sample(config: SnnConfig, emit: Callable[[str], None]) -> dict:
    """Generate ``length`` tokens after the prompt in RNN mode for each of ``samples`` continuations. One
    continuation is handed to ``emit`` piece by piece as it is generated; several are handed over whole, one after
    the other, at the end. Ctrl-C stops generation and keeps what was generated (``interrupted`` in the result)."""
    saved, model, path = load_checkpoint(config.checkpoint)
    prompt = torch.tensor(encode(config.prompt, saved["vocabulary"], model.config.vocab))
    rng = np.random.default_rng(config.seed)
    steps: list[list[int]] = []
    start, interrupted = time.perf_counter(), False
    try:
        for tokens in generate(model, prompt, config.length, temperature=config.temperature, top_p=config.top_p,
                               rng=rng, samples=config.samples):
            steps.append(tokens)
            if config.samples == 1:
                emit(decode(tokens, saved["vocabulary"]))
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start
    texts = [decode([tokens[i] for tokens in steps], saved["vocabulary"]) for i in range(config.samples)]
    if config.samples > 1:
        for index, text in enumerate(texts):
            emit(f"{'' if index == 0 else chr(10)}--- sample {index + 1} ---\n{text}")
    generated = len(steps) * config.samples
    return {"checkpoint": str(path), "step": saved["step"], "prompt": config.prompt, "text": texts[0],
            "texts": texts, "samples": config.samples, "tokens": generated, "seconds": seconds,
            "tokens_per_second": generated / seconds if seconds > 0 else None,
            "compiled_step": step.supports(model), "interrupted": interrupted}


def load_checkpoint(path: Path) -> tuple[dict, SpikeGPT, Path]:
    """A train-snn checkpoint (file or run folder), loaded without unpickling code and checked: its contents,
    the model with its weights, and the file's path."""
    saved, path = io.load_saved_model(path, CHECKPOINT)
    if saved.get("format") != FORMAT or not isinstance(saved.get("model"), dict):
        raise InputError(f"checkpoint {path}: not a train-snn checkpoint (expected format '{FORMAT}')")
    try:
        model = SpikeGPT(ModelConfig(**saved["model_config"]))
        model.load_state_dict(saved["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise InputError(f"checkpoint {path}: its weights do not fit its model settings "
                         f"({reason(exc)})") from None
    return saved, model, path


def _trainer(config: SnnConfig, vocab: int, fingerprint: str, out_dir: Path | None,
             device: str) -> tuple[Trainer, list[dict], list[float]]:
    """A fresh trainer, or the one in --out's checkpoint; the validation history and the training losses (BPC)
    since the last check, so a resumed run reports what the uninterrupted one would."""
    if not config.resume:
        model_config = model_config_of(config, vocab)
        optim = OptimConfig(lr_init=config.lr_init, lr_final=config.lr_final, grad_clip=config.grad_clip)
        return Trainer.fresh(model_config, optim, seed=config.seed, steps=config.steps, device=device), [], []
    if out_dir is None:
        raise InputError("--resume: needs --out, the folder of the run to continue")
    saved, _, path = load_checkpoint(out_dir)
    for field in RUN_FIELDS:
        if field == "steps" and config.steps > saved["step"]:
            continue  # a longer (or a shorter, still unfinished) run: see Trainer.extend
        if field == "steps" and config.steps != saved["run"]["steps"]:
            raise InputError(f"--resume: {path} is at step {saved['step']} already; --steps must exceed it to "
                             "train on")
        trained = saved["run"].get(field, EARLIER_RUN_FIELDS.get(field))
        if trained != _plain(getattr(config, field)):
            raise InputError(f"--resume: {path} was trained with {field} {trained!r}, not "
                             f"{_plain(getattr(config, field))!r}; resume with the run's own recipe.yaml")
    if saved["fingerprint"] != fingerprint:
        raise InputError(f"--resume: the data {config.data} differs from the corpus {path} was trained on")
    trainer = Trainer.restore(saved, device)
    if config.steps != trainer.steps:
        trainer.extend(config.steps)
    return trainer, saved["history"], saved["losses_since_check"]


def _plain(value):
    return str(value) if isinstance(value, Path) else value


def _stop_if_diverged(diverged: bool, trainer: Trainer, config: SnnConfig) -> None:
    """Exit 1 (every process together) once the training or validation loss is NaN or infinite."""
    if distributed.agree(diverged, trainer.device):
        raise RunError(f"training diverged at step {trainer.step}: the loss is not finite; lower lr_init "
                       f"(now {config.lr_init:g}) or grad_clip (now {config.grad_clip:g})")
