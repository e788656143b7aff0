"""nmkit's small model zoo and safe model loading.

Zoo architectures (for scikit-learn's 8x8 digits, inputs [N, 1, 8, 8] in [0, 1]): ``mlp`` and ``cnn``.
Each ends in a Linear layer named ``head``, so tools that need the penultimate features find it.
Loading never unpickles code unless the user opts in: TorchScript archives and state dicts (with a zoo
architecture) load with ``weights_only``; a ``torch.save``d module needs ``trust_pickle``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from nmkit.core import datasets
from nmkit.core.errors import InputError


def mlp(classes: int = 10) -> nn.Module:
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("hidden1", nn.Linear(64, 128))
    model.add_module("act1", nn.ReLU())
    model.add_module("hidden2", nn.Linear(128, 64))
    model.add_module("act2", nn.ReLU())
    model.add_module("head", nn.Linear(64, classes))
    return model


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


ZOO = {"mlp": mlp, "cnn": cnn}


def digits_tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as float images in [0, 1], shape [N, 1, 8, 8], and integer labels."""
    images, labels = datasets.digits(split)
    return torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1), torch.from_numpy(labels).long()


def train_on_digits(name: str, *, epochs: int = 40, seed: int = 0) -> tuple[nn.Module, float]:
    """Train a zoo model on the digits training split (Adam, full batches); returns it and test accuracy."""
    if name not in ZOO:
        raise InputError(f"architecture {name!r}: choose one of {', '.join(ZOO)}")
    torch.manual_seed(seed)
    model = ZOO[name]()
    x, y = digits_tensors("train")
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    test_x, test_y = digits_tensors("test")
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    return model, accuracy


def load_model(path: Path, *, architecture: str | None = None, trust_pickle: bool = False) -> nn.Module:
    """A TorchScript archive, a state dict for a zoo ``architecture``, or (with ``trust_pickle``) a module."""
    return load_model_and_format(path, architecture=architecture, trust_pickle=trust_pickle)[0]


def load_model_and_format(path: Path, *, architecture: str | None = None,
                          trust_pickle: bool = False) -> tuple[nn.Module, str]:
    """:func:`load_model`, also saying which format the file held: torchscript, state_dict or module."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model {path}: no such file")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval(), "torchscript"
    except (RuntimeError, ValueError):
        pass  # not TorchScript
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for untrusted pickles
        hint = " (a pickled module: pass --trust-pickle if you trust its source)" if not trust_pickle else ""
        raise InputError(f"model {path}: cannot be loaded{hint}: {str(exc).splitlines()[0][:120]}") from None
    if isinstance(loaded, nn.Module):
        return loaded.eval(), "module"
    if isinstance(loaded, dict):
        if architecture not in ZOO:
            raise InputError(f"model {path}: a state dict needs --architecture ({', '.join(ZOO)})")
        model = ZOO[architecture](loaded["head.weight"].shape[0]) if "head.weight" in loaded else ZOO[architecture]()
        try:
            model.load_state_dict(loaded)
        except RuntimeError as exc:
            raise InputError(f"model {path}: does not fit architecture {architecture} ({str(exc)[:120]})") from None
        return model.eval(), "state_dict"
    raise InputError(f"model {path}: expected a TorchScript archive, a state dict or a module")


def save_model(model: nn.Module, fmt: str, handle) -> None:
    """Write ``model`` in the given format (torchscript, state_dict or module) to an open binary file."""
    if fmt == "torchscript":
        torch.jit.save(model, handle)
    elif fmt == "module":
        torch.save(model, handle)
    else:
        torch.save(model.state_dict(), handle)
