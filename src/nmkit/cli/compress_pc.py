"""``nmkit compress-pc ACTION``: train an HCLT, encode, decode, or all three with a verification."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.errors import InputError, RunError
from nmkit.core.pc.config import ACTION_HELP, PCConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.pc.codec import PCResult

MODEL = "Model and training"


def run(config: PCConfig, ctx: RunContext) -> Outcome:
    import numpy as np

    from nmkit.core import io
    from nmkit.core.pc.codec import decode, encode, roundtrip, train
    from nmkit.core.report import jsonable

    epochs = config.minibatch_epochs + config.full_batch_epochs
    if config.action in ("encode", "decode"):
        _refuse_overwrite(config.output, ctx.force)
        result = encode(config) if config.action == "encode" else decode(config)
        if config.action == "encode":
            io.atomic_write(config.output, lambda fh: fh.write(result.blob))
        else:
            io.atomic_write(config.output, lambda fh: np.save(fh, result.decoded, allow_pickle=False))
        artifacts = [str(config.output)]
    else:
        with ctx.progress("EM epochs", epochs) as advance:
            result = train(config, advance) if config.action == "train" else roundtrip(config, advance)
        artifacts = []
        if result.roundtrip_exact is False:
            raise RunError("round trip failed: decoded data differs from the input")
    if ctx.out_dir is not None and result.model is not None:
        result.model.save(ctx.out_dir / "model.npz")
        artifacts.append("model.npz")
        if result.evaluated is not None and _draw_bits_picture(result, ctx.out_dir):
            artifacts.append("bits.png")
    return Outcome(summary=jsonable(result.summary()), tables=[_table(result)], artifacts=artifacts)


def _draw_bits_picture(result: PCResult, out_dir: Path) -> bool:
    """bits.png; a picture that cannot be drawn is a warning, never the end of a run whose model is written."""
    from nmkit.core import io
    from nmkit.core.errors import reason
    from nmkit.core.pc.codec import bits_picture

    try:
        io.write_png(out_dir / "bits.png", bits_picture(result.model, result.evaluated))
    except Exception as exc:  # noqa: BLE001 - the model and results are written; the picture is an extra
        print(f"warning: bits.png not drawn ({type(exc).__name__}: {reason(exc)})", file=sys.stderr)
        return False
    return True


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"output {path}: exists; pass --force to replace it")


def _table(result: PCResult) -> Table:
    from rich.table import Table

    table = Table("", "", title=f"compress-pc {result.action}", show_header=False)
    rows = [("latents K / variables D / parameters", f"{result.latents} / {result.variables} / "
                                                     f"{result.parameters:,}" if result.parameters else None),
            ("transform", result.transform),
            ("train bits per dimension", _fmt(result.train_bpd)),
            ("model bits per dimension on the coded / test data", _fmt(result.test_bpd)),
            ("ANS payload bits per dimension", _fmt(result.payload_bpd)),
            ("file bits per dimension (actual)", _fmt(result.actual_bpd)),
            ("items / encoded bytes", f"{result.items:,} / {result.encoded_bytes:,}" if result.items else None),
            ("encode items / s", _fmt(result.encode_items_per_second, ".0f")),
            ("decode items / s", _fmt(result.decode_items_per_second, ".0f")),
            ("round trip exact", None if result.roundtrip_exact is None else str(result.roundtrip_exact)),
            ("seconds", f"{result.seconds:.2f}")]
    for key, value in rows:
        if value is not None:
            table.add_row(key, value)
    return table


def _fmt(value: float | None, spec: str = ".4f") -> str | None:
    return None if value is None else format(value, spec)


COMMAND = register(Command(name="compress-pc", schema=PCConfig, run=run,
                           help="Lossless compression with a probabilistic circuit (HCLT) and an rANS coder."))


@capability(COMMAND, {"Actions": ACTION_HELP})
def compress_pc(
    action: Annotated[str, typer.Argument(metavar="train|encode|decode|roundtrip", help="What to do (listed below).")],
    input: Annotated[str | None, typer.Argument(help="encode: .npy, image folder, or digits, mnist, photos, "
                                                     "photos16; decode: .nmpc file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (encode/decode).")] = None,
    model: Annotated[Path | None, typer.Option(help="model.npz, or a train run's --out folder.")] = None,
    data: Annotated[str | None, typer.Option(help="Training data: digits, mnist (256 levels), photos (8x8 patches, "
                                                  "256 levels), photos16, a folder of PNG/PGM images or an .npy "
                                                  "array.", rich_help_panel=MODEL)] = None,
    latents: Annotated[int | None, typer.Option(help="K latent states (default 32).", rich_help_panel=MODEL)] = None,
    values: Annotated[int | None, typer.Option(help="Symbols per variable (default from data).",
                                               rich_help_panel=MODEL)] = None,
    minibatch_epochs: Annotated[int | None, typer.Option(help="Mini-batch EM epochs (default 10).",
                                                         rich_help_panel=MODEL)] = None,
    full_batch_epochs: Annotated[int | None, typer.Option(help="Full-batch EM epochs (default 30).",
                                                          rich_help_panel=MODEL)] = None,
    smoothing: Annotated[float | None, typer.Option(help="Gaussian-shaped pseudo-observations per emission row "
                                                         "(default 0 = plain categorical; 10-100 for images).",
                                                    rich_help_panel=MODEL)] = None,
    transform: Annotated[str | None, typer.Option(metavar="none|med", help="med: model JPEG-LS prediction residuals "
                                                                           "(natural images).",
                                                  rich_help_panel=MODEL)] = None,
    augment: Annotated[str | None, typer.Option(metavar="none|shift4|shift8", help="Train also on 1-pixel shifted "
                                                                                  "copies (few training images).",
                                                rich_help_panel=MODEL)] = None,
    chunk: Annotated[int | None, typer.Option(help="Items per rANS stream (default 256); streams run in "
                                                   "parallel.")] = None,
):
    """Train a Hidden Chow-Liu Tree, then compress and restore fixed-length discrete vectors exactly.

    Examples: `nmkit compress-pc train --out runs/pc`, `nmkit compress-pc encode digits --model runs/pc -o d.nmpc`,
    `nmkit compress-pc decode d.nmpc --model runs/pc -o d.npy`, `nmkit compress-pc roundtrip`.
    """
    flags = dict(action=action, input=input, output=output, model=model, data=data, latents=latents, values=values,
                 minibatch_epochs=minibatch_epochs, full_batch_epochs=full_batch_epochs, smoothing=smoothing,
                 transform=transform, augment=augment, chunk=chunk)
    return flags

