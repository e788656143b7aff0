"""nmkit's small model zoo and safe model loading.

Zoo architectures: ``mlp`` and ``cnn`` for scikit-learn's 8x8 digits (inputs [N, 1, 8, 8] in [0, 1]) and a small
``resnet`` for 32x32 inputs (digits upsampled, [N, 1, 32, 32]). Each ends in a Linear layer named ``head``, so
tools that need the penultimate features find it.
Loading never unpickles code unless the user opts in: TorchScript archives and state dicts (with a zoo
architecture) load with ``weights_only``; a ``torch.save``d module needs ``trust_pickle``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from nmkit.core import datasets, io
from nmkit.core.errors import InputError, reason


def _dense(widths: tuple[int, ...], classes: int) -> nn.Module:
    """flatten, then hidden1/act1, hidden2/act2, ... (Linear + ReLU through ``widths``), then a Linear head."""
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    for index, (inputs, outputs) in enumerate(zip(widths[:-1], widths[1:], strict=True), 1):
        model.add_module(f"hidden{index}", nn.Linear(inputs, outputs))
        model.add_module(f"act{index}", nn.ReLU())
    model.add_module("head", nn.Linear(widths[-1], classes))
    return model


def mlp(classes: int = 10) -> nn.Module:
    """64-128-64-classes for the 8x8 digits."""
    return _dense((64, 128, 64), classes)


def cnn(classes: int = 10) -> nn.Module:
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(1, 16, 3, padding=1))
    model.add_module("act1", nn.ReLU())
    model.add_module("conv2", nn.Conv2d(16, 32, 3, padding=1))
    model.add_module("act2", nn.ReLU())
    model.add_module("pool", nn.MaxPool2d(2))
    model.add_module("flatten", nn.Flatten())
    model.add_module("hidden", nn.Linear(32 * 4 * 4, 64))
    model.add_module("act3", nn.ReLU())
    model.add_module("head", nn.Linear(64, classes))
    return model


def lenet(classes: int = 10) -> nn.Module:
    """LeNet-300-100 (LeCun et al. 1998), the classic pruning testbed: 784-300-100-10 for 28x28 inputs."""
    return _dense((784, 300, 100), classes)


def cnn28(classes: int = 10) -> nn.Module:
    """A small CNN for 28x28 inputs: two 5x5 conv + max-pool stages, one hidden Linear layer."""
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(1, 16, 5))
    model.add_module("act1", nn.ReLU())
    model.add_module("pool1", nn.MaxPool2d(2))
    model.add_module("conv2", nn.Conv2d(16, 32, 5))
    model.add_module("act2", nn.ReLU())
    model.add_module("pool2", nn.MaxPool2d(2))
    model.add_module("flatten", nn.Flatten())
    model.add_module("hidden", nn.Linear(32 * 4 * 4, 128))
    model.add_module("act3", nn.ReLU())
    model.add_module("head", nn.Linear(128, classes))
    return model


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN when the shape changes) shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet(classes: int = 10) -> nn.Module:
    """A ResNet-8 for 1x32x32 inputs: a 3x3 stem, three basic blocks (16, 32, 64 channels; strides 1, 2, 2)."""
    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(1, 16, 3, padding=1, bias=False))
    model.add_module("bn", nn.BatchNorm2d(16))
    model.add_module("act", nn.ReLU())
    model.add_module("block1", BasicBlock(16, 16, 1))
    model.add_module("block2", BasicBlock(16, 32, 2))
    model.add_module("block3", BasicBlock(32, 64, 2))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("head", nn.Linear(64, classes))
    return model


ZOO = {"mlp": mlp, "cnn": cnn, "resnet": resnet, "lenet": lenet, "cnn28": cnn28}
INPUT_SIDE = {"mlp": 8, "cnn": 8, "resnet": 32, "lenet": 28, "cnn28": 28}


def digits_tensors(split: str, side: int = 8, data: str = "digits") -> tuple[torch.Tensor, torch.Tensor]:
    """A built-in image set (digits 8x8, or mnist 28x28) as float images in [0, 1], shape [N, 1, side, side]
    (bilinear resampling to another side), and labels."""
    load, top = datasets.BUILT_IN[data]
    images, labels = load(split)
    x = torch.from_numpy(images.astype(np.float32) / top).unsqueeze(1)
    if side != x.shape[-1]:
        x = nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
    return x, torch.from_numpy(labels).long()


def train_on_digits(name: str, *, epochs: int = 40, seed: int = 0, data: str = "digits") -> tuple[nn.Module, float]:
    """Train a zoo model on a built-in training split (Adam, batches of 128); returns it and test accuracy."""
    if name not in ZOO:
        raise InputError(f"architecture {name!r}: choose one of {', '.join(ZOO)}")
    torch.manual_seed(seed)
    return fit(ZOO[name](), INPUT_SIDE[name], data, epochs=epochs, seed=seed)


def fit(model: nn.Module, side: int, data: str, *, epochs: int, seed: int, lr: float = 3e-3) -> tuple[nn.Module, float]:
    """Train ``model`` on a built-in training split at ``side`` x ``side`` (Adam, batches of 128, seeded order);
    returns it in eval mode and its test accuracy."""
    x, y = digits_tensors("train", side, data)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    test_x, test_y = digits_tensors("test", side, data)
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    return model, accuracy


def load_model(path: Path, *, architecture: str | None = None, trust_pickle: bool = False) -> nn.Module:
    """A TorchScript archive, a state dict for a zoo ``architecture``, or (with ``trust_pickle``) a module."""
    return load_model_and_format(path, architecture=architecture, trust_pickle=trust_pickle)[0]


def _looks_like_torch_save(path: Path) -> bool:
    """torch.save writes a zip archive (or, before torch 1.6, a pickle starting with the protocol byte 0x80)."""
    import zipfile

    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80" or zipfile.is_zipfile(handle)


def load_model_and_format(path: Path, *, architecture: str | None = None,
                          trust_pickle: bool = False) -> tuple[nn.Module, str]:
    """:func:`load_model`, also saying which format the file held: torchscript, state_dict or module."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model {path}: no such file" if not path.exists() else f"model {path}: is not a file")
    if path.stat().st_size == 0:
        raise InputError(f"model {path}: is empty")
    try:
        scripted = torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError):
        pass  # not TorchScript
    else:
        io.check_finite_tensors(scripted.state_dict(), f"model {path}")
        return scripted, "torchscript"
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for untrusted pickles
        if not trust_pickle and "Unsupported global" in str(exc):
            raise InputError(f"model {path}: holds pickled code (a torch.save'd module); pass --trust-pickle on the "
                             f"command line if you trust its source") from None
        if not _looks_like_torch_save(path):
            raise InputError(f"model {path}: is not a model file (expected a TorchScript archive, a torch.save'd "
                             f"state dict or module, a .safetensors file or a Hugging Face model folder)") from None
        raise InputError(f"model {path}: cannot be loaded: {reason(exc, 120)}") from None
    if isinstance(loaded, nn.Module):
        io.check_finite_tensors(loaded.state_dict(), f"model {path}")
        return loaded.eval(), "module"
    io.check_finite_tensors(loaded, f"model {path}")
    if isinstance(loaded, dict):
        if architecture not in ZOO:
            raise InputError(f"model {path}: a state dict needs --architecture ({', '.join(ZOO)})")
        head = loaded.get("head.weight")
        try:
            model = ZOO[architecture](head.shape[0]) if isinstance(head, torch.Tensor) else ZOO[architecture]()
            model.load_state_dict(loaded)
        except (RuntimeError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(f"model {path}: does not fit architecture {architecture} ({reason(exc, 120)})") from None
        return model.eval(), "state_dict"
    raise InputError(f"model {path}: expected a TorchScript archive, a state dict or a module")


class Portable:
    """A loaded model that worker processes can receive: pickled as TorchScript bytes (a scripted model) or as
    ``torch.save`` bytes of the module (classes by reference, as ``--trust-pickle`` or the zoo gave them). Made in
    the driver from a model it already loaded, so unpickling it trusts nothing new."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __getstate__(self) -> dict:
        import io as bytes_io

        buffer = bytes_io.BytesIO()
        scripted = isinstance(self.model, torch.jit.ScriptModule)
        torch.jit.save(self.model, buffer) if scripted else torch.save(self.model, buffer)
        return {"scripted": scripted, "bytes": buffer.getvalue()}

    def __setstate__(self, state: dict) -> None:
        import io as bytes_io

        buffer = bytes_io.BytesIO(state["bytes"])
        self.model = torch.jit.load(buffer, map_location="cpu") if state["scripted"] else \
            torch.load(buffer, map_location="cpu", weights_only=False)


class ForwardFailed(InputError):
    """The model's forward raised on the data's inputs (it takes other inputs, or it is broken)."""


def check_classifier(model: nn.Module, x: torch.Tensor, classes: int, data: str, source: str) -> None:
    """Run ``model`` on a few of the data's inputs and refuse outputs that are not logits for its classes: one
    finite tensor [N, C] with C >= the data's ``classes``. ``source`` names the model in messages, ``data`` the
    inputs; a forward that raises is :class:`ForwardFailed`."""
    sample = x[:8]
    try:
        with torch.no_grad():
            output = model(sample)
    except (RuntimeError, ValueError, TypeError, IndexError, torch.jit.Error) as exc:
        raise ForwardFailed(f"model {source}: its forward fails on {data} inputs of shape {list(x.shape[1:])} "
                            f"({reason(exc, 80)})") from None
    expected = f"expected logits [N, C] with C >= the {classes} classes of {data}"
    if not isinstance(output, torch.Tensor):
        raise InputError(f"model {source}: its forward returns a {type(output).__name__}, not a tensor; {expected}")
    if output.dim() != 2 or output.shape[0] != len(sample):
        raise InputError(f"model {source}: outputs shape {list(output.shape)} for {len(sample)} {data} inputs; "
                         f"{expected}")
    if output.shape[1] < classes:
        raise InputError(f"model {source}: has {output.shape[1]} outputs, but {data} has {classes} classes")
    if not output.is_floating_point() or not bool(torch.isfinite(output).all()):
        raise InputError(f"model {source}: outputs NaN, infinite or non-float logits on {data} inputs")


def save_model(model: nn.Module, fmt: str, handle) -> None:
    """Write ``model`` in the given format (torchscript, state_dict or module) to an open binary file."""
    if fmt == "torchscript":
        torch.jit.save(model, handle)
    elif fmt == "module":
        torch.save(model, handle)
    else:
        torch.save(model.state_dict(), handle)
