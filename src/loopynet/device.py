"""Which device a run computes on: `--device auto|cpu|cuda`.

On "cpu" loopynet uses its compiled C kernels (models/fast_kernel.py) where they apply; on "cuda" every
recurrent cell runs on cuDNN: GRU/LSTM as `torch.nn.GRU/LSTM`, the book's single-bias SimpleRNN as its
`torch.nn.RNN` twin (models/twin.py). Models are built and initialised on the CPU (the same seed gives
the same initial weights on every device), then moved; batches follow the model's device; results come
back to the CPU as NumPy arrays. Saved model folders hold CPU tensors whatever the device.
"""

from __future__ import annotations

import torch

from loopynet.config import DEVICES
from loopynet.errors import InputError


class DeviceError(InputError):
    """A device that was asked for is not available (the message says why and what to use instead)."""


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for `name`: "auto" is cuda when `torch.cuda.is_available()`, else cpu.

    Raises:
        DeviceError: an unknown name, or "cuda" on a machine or torch build without CUDA.
    """
    if name not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES)")
        raise DeviceError(f"--device cuda: CUDA is not available ({why}, torch {torch.__version__}); "
                          "use --device cpu or --device auto")
    return torch.device(name)


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of `model`'s first parameter or buffer (cpu for a model without tensors)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
