"""Where a model runs and in which precision: ``--device auto|cpu|cuda|cuda:N`` and
``--precision fp32|bf16|int8``, checked here once, with errors that say what to use instead.

* ``bf16``: autocast of the encoder and the head's scores (decoding stays in float32). On the CPU
  only where the processor computes bf16 natively (AVX512-BF16 or AMX); elsewhere torch emulates
  it, slower than fp32, so it is refused rather than quietly slow.
* ``int8``: dynamic quantization of the encoder's linear maps (``nn.Linear`` layers and the LSTM's
  gate matrices): int8 weights, activations quantized per batch. CPU only (the quantized kernels,
  fbgemm/oneDNN, have no CUDA version).

CPU threads (``training.cpu_threads``, ``--threads``): by default half the cores this process
may run on, at least one (``nerkit.threads.default_cpu_threads``), unless ``OMP_NUM_THREADS`` says otherwise.
torch's own default, every core, falls off a cliff on a shared machine: its threads meet at a
barrier after every operation, so one thread that a neighbour's process delays stalls them all.
On our 2-core machine with one busy process beside it, the default ``nerkit train`` took 112 s
with two threads and 47 s with one (45 s with one on the idle machine, 38 s with two).
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import nn

from nerkit.errors import NerkitError
from nerkit.threads import set_cpu_threads as record_cpu_threads

PRECISIONS = ("fp32", "bf16", "int8")
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def cpu_supports_bf16() -> bool:
    """Whether this processor has native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16
    autocast on the CPU is emulated and slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` (a CUDA GPU when torch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``,
    refused clearly when the GPU asked for is not there."""
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(name)
    if match is None:
        raise NerkitError(f"--device {device!r}: expected {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        build = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA GPU"
        raise NerkitError(f"--device {device}: no CUDA GPU is available here ({build}); use --device cpu "
                          "(or auto, which picks a GPU when there is one)")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise NerkitError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run (see the module docstring)."""
    if precision not in PRECISIONS:
        raise NerkitError(f"--precision {precision!r}: expected {', '.join(PRECISIONS)}")
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise NerkitError(f"--precision bf16: the GPU {device} has no bf16 support; use fp32")
        if device.type == "cpu" and not cpu_supports_bf16():
            raise NerkitError("--precision bf16 on the CPU needs a processor with AVX512-BF16 or AMX, and this one "
                              "has neither (bf16 would be emulated, slower than fp32); use fp32, or int8 for speed")
    if precision == "int8" and device.type != "cpu":
        raise NerkitError(f"--precision int8 (dynamic quantization) runs on the CPU only, not on {device}; "
                          "use --device cpu, or --precision bf16 on a GPU")


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads (intra-op; ONNX Runtime sessions take the same number) to ``threads``,
    or when None to ``OMP_NUM_THREADS`` if set, else ``default_cpu_threads()``; returns the number.
    ``nerkit.threads.set_cpu_threads`` records it without torch, for the ONNX runtime alone."""
    threads = record_cpu_threads(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def quantize_linear_layers(module: nn.Module) -> nn.Module:
    """Dynamic int8 quantization, in place, of the linear maps of ``module``: its ``nn.Linear``
    layers and ``nn.LSTM`` gate matrices (the layers that hold nearly all of an encoder's
    multiply-adds); embeddings and convolutions stay float32."""
    kinds = {nn.Linear, nn.LSTM}
    if not any(type(layer) in kinds for layer in module.modules()):
        raise NerkitError(f"--precision int8: the {type(module).__name__} has no nn.Linear or nn.LSTM layer to "
                          "quantize; use fp32")
    quantize_dynamic = getattr(getattr(torch, "ao", None) and torch.ao.quantization, "quantize_dynamic", None)
    if quantize_dynamic is None:
        raise NerkitError(f"--precision int8 needs torch.ao.quantization.quantize_dynamic, which torch "
                          f"{torch.__version__} no longer has; use fp32, or the int8 ONNX export (--runtime onnx)")
    with warnings.catch_warnings():
        # Deprecated in favour of torchao since torch 2.10, still present and fast on x86 (fbgemm).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        return quantize_dynamic(module, kinds, dtype=torch.qint8, inplace=True)


__all__ = ["PRECISIONS", "check_precision", "cpu_supports_bf16", "quantize_linear_layers",
           "resolve_device", "set_cpu_threads"]
