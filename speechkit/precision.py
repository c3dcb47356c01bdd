"""Which reduced-precision fast paths this machine really has: the one place every bf16 / fp16 option asks.

A bf16 or fp16 path is only worth taking where the hardware computes in that type. On CPUs this means
AVX512-BF16 or AMX for bf16 and AVX512-FP16 or AMX-FP16 for fp16: elsewhere oneDNN either has no kernel (a
``RuntimeError`` from deep inside torch) or emulates the type at a fraction of fp32 speed (bf16 matrix products
on an AVX2-only EPYC are about 30x slower than fp32). :func:`resolve_precision` returns the precision to run: the
one asked for where the kernels exist, else ``"fp32"`` after one warning line naming the reason.

Example:
    >>> from speechkit.precision import resolve_precision, machine_summary
    >>> resolve_precision("bf16", "cpu", what="vocoder")    # on an AVX2-only CPU:
    speechkit: vocoder: bf16 requested but this CPU (AMD EPYC, torch capability AVX2) has no bf16 ...; using fp32
    'fp32'
    >>> machine_summary()["cpu"]
    'AMD EPYC'
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "DTYPES", "cpu_info", "machine_summary", "fast_path_missing", "resolve_precision",
           "autocast_dtype"]

log = logging.getLogger(__name__)

#: the precisions a fast-path option accepts
PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}  # torch dtype -> precision name
_NAMES = DTYPE_NAMES
#: ISA flags (as /proc/cpuinfo spells them) that decide the fast paths, printed by benchmarks
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")

_warned: set[tuple[str, str]] = set()


@functools.lru_cache(maxsize=1)
def _proc_cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = "", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return model or platform.processor() or platform.machine(), flags


def cpu_info() -> dict:
    """The CPU as the fast paths see it.

    Returns:
        ``{"model", "capability", "flags", "threads"}``: the model name, torch's dispatch capability (``"AVX2"``,
        ``"AVX512"``, ...), the :data:`ISA_FLAGS` the CPU has, and torch's intra-op thread count.
    """
    model, flags = _proc_cpuinfo()
    # torch's own checks see the same CPUID bits; they cover machines without /proc/cpuinfo
    own = {"avx2": torch._C._cpu._is_avx2_supported(), "avx512f": torch._C._cpu._is_avx512_supported(),
           "avx512_bf16": torch._C._cpu._is_avx512_bf16_supported(), "amx_tile": torch._C._cpu._is_amx_tile_supported(),
           "amx_fp16": torch._C._cpu._is_amx_fp16_supported()}
    have = {f for f in ISA_FLAGS if f in flags or own.get(f, False)}
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(),
            "flags": [f for f in ISA_FLAGS if f in have], "threads": torch.get_num_threads()}


def machine_summary() -> dict:
    """What a benchmark prints about where it ran: the CPU (:func:`cpu_info`), the GPU if any, torch's version."""
    info = cpu_info()
    out = {"cpu": info["model"], "torch_capability": info["capability"], "isa": info["flags"],
           "threads": info["threads"], "cores": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def machine_line() -> str:
    """:func:`machine_summary` as one line, for the top of a benchmark's output."""
    m = machine_summary()
    isa = " ".join(m["isa"]) or "none of " + " ".join(ISA_FLAGS)
    gpu = f", GPU {m['gpu']}" if "gpu" in m else ""
    return (f"machine: {m['cpu']} ({m['cores']} cores, torch {m['threads']} threads, capability "
            f"{m['torch_capability']}, ISA {isa}){gpu}, torch {m['torch']}")


@functools.cache
def _cpu_kernel_runs(dtype: torch.dtype) -> str | None:
    """A tiny probe of the kernels the fast paths use (a matmul and a channels-last 2-D convolution, as the
    vocoder runs it); the error text when one is missing."""
    try:
        with torch.inference_mode():
            x = torch.randn(1, 8, 1, 16).to(dtype).contiguous(memory_format=torch.channels_last)
            w = torch.randn(8, 8, 1, 3).to(dtype).contiguous(memory_format=torch.channels_last)
            torch.nn.functional.conv2d(x, w)
            torch.randn(4, 4).to(dtype) @ torch.randn(4, 4).to(dtype)
    except RuntimeError as e:
        return str(e).splitlines()[0][:160]
    return None


def _cpu_reason(precision: str) -> str | None:
    info = cpu_info()
    flags = set(info["flags"])
    where = f"this CPU ({info['model'] or 'unknown'}, torch capability {info['capability']})"
    if precision == "bf16":
        if platform.machine().lower() in ("aarch64", "arm64"):
            native = "bf16" in _proc_cpuinfo()[1]
        else:
            native = bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
        if not native:
            return f"{where} has no bf16 arithmetic (AVX512-BF16 or AMX), so bf16 would be emulated or fail"
    elif precision == "fp16":
        if platform.machine().lower() in ("aarch64", "arm64"):
            native = "fphp" in _proc_cpuinfo()[1] or "asimdhp" in _proc_cpuinfo()[1]
        else:
            native = bool(flags & {"avx512_fp16", "amx_fp16"})
        if not native:
            return f"{where} has no fp16 arithmetic (AVX512-FP16 or AMX-FP16), so fp16 would be emulated or fail"
    error = _cpu_kernel_runs(DTYPES[precision])
    if error is not None:
        return f"{where}: the {precision} kernels fail ({error})"
    return None


def fast_path_missing(precision: str, device: str | torch.device = "cpu") -> str | None:
    """Why ``precision`` is not a fast path on ``device``, or ``None`` where it is (``"fp32"`` always is).

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Found {precision!r}")
    if precision == "fp32":
        return None
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_reason(precision)
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"GPU {torch.cuda.get_device_name(device)} has no bf16 arithmetic"
        return None
    return None  # other accelerators: their backends refuse types they lack with clear errors of their own


def resolve_precision(precision: str, device: str | torch.device = "cpu", *, what: str) -> str:
    """The precision to run ``what`` in: ``precision`` where its kernels exist on ``device``, else ``"fp32"``,
    announced by one warning line (once per process for each ``what`` and reason).

    Args:
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: where ``what`` runs.
        what: the component, named in the warning (``"vocoder"``, ``"HuBERT --fast"``, ...).
    """
    reason = fast_path_missing(precision, device)
    if reason is None:
        return precision
    if (what, reason) not in _warned:
        _warned.add((what, reason))
        log.warning("speechkit: %s: %s requested but %s; using fp32", what, precision, reason)
    return "fp32"


def autocast_dtype(dtype: torch.dtype | None, device: str | torch.device = "cpu", *, what: str) -> torch.dtype | None:
    """:func:`resolve_precision` for code that holds an autocast dtype: ``None`` (fp32) where ``dtype``'s kernels
    are missing on ``device``."""
    if dtype is None or dtype == torch.float32:
        return None
    if dtype not in _NAMES:
        raise ValueError(f"autocast dtype must be torch.bfloat16 or torch.float16. Found {dtype}")
    name = resolve_precision(_NAMES[dtype], device, what=what)
    return None if name == "fp32" else DTYPES[name]
