"""Where training and sampling run: the device, and the dtype that is fast there."""

from __future__ import annotations

import os
import re
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import LladaError, UsageError, named
from . import check_device_name

if TYPE_CHECKING:
    from ..model.transformer import Transformer


def resolve_device(name: str) -> torch.device:
    check_device_name(name)
    kind = name.split(":")[0]
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"{named('device')} cuda: no CUDA device is available; use {named('device')} cpu or auto"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError(
            f"{named('device')} mps: MPS is not available on this machine; use {named('device')} cpu or auto"
        )
    return torch.device(name)


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls are fast here: CUDA with bf16, or a CPU with AVX512-BF16/AMX.

    On other CPUs (AVX2 only) bf16 matmuls are emulated and 10-60x slower than fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False  # e.g. ATEN_CPU_CAPABILITY=avx2: the bf16 kernels in use are emulated
    return bool({"avx512_bf16", "amx_bf16"} & cpu_vector_flags())


def cpu_vector_flags() -> set[str]:
    """The CPU's AVX2/AVX512/AMX flags, which decide torch's kernels (empty where /proc is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(re.findall(r"\b(avx2|avx512\w*|amx\w*)\b", text))


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """auto: bf16 where it is fast, else fp16 on CUDA (a T4), else fp32. fp16 is for CUDA only."""
    if dtype == "auto":
        return "bf16" if fast_bf16(device) else ("fp16" if device.type == "cuda" else "fp32")
    if dtype == "fp16" and device.type != "cuda":
        raise UsageError(
            f"{named('dtype')} fp16 is for CUDA GPUs without bf16 (on {device.type} it is slow or "
            "unsupported): use fp32, bf16 or auto"
        )
    return dtype


AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(device: torch.device, dtype: str) -> AbstractContextManager:
    if dtype in AUTOCAST:
        return torch.autocast(device_type=device.type, dtype=AUTOCAST[dtype])
    return nullcontext()


def gradient_scaler(device: torch.device, dtype: str) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; for every other dtype the scaler is a no-op."""
    return torch.amp.GradScaler(device.type, enabled=dtype == "fp16")


def compile_blocks(model: Transformer) -> str | None:
    """torch.compile each transformer block in place (weights and their names unchanged); returns
    why not, in one line, where this machine cannot compile (the model then runs eagerly).

    Blocks rather than the whole model: they share one graph, and the fused elementwise work
    (norms, rotary, gate) is where compiling gains; the head and the loss stay eager.
    """
    try:
        # a missing C++ compiler or Triton, or an unsupported Python, shows here in seconds
        torch.compile(_compile_probe)(torch.ones(2))
    except Exception as error:  # noqa: BLE001 - any failure means: run eagerly
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"torch.compile is unavailable here ({reason[:120]}); running without it"
    for block in model.layers:
        block.compile()
    return None


def _compile_probe(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


def idle_cores(busy: int | None = None) -> int:
    """Threads for a process starting now: one per core that other processes are not keeping busy.

    An OpenMP thread that shares its core with another busy process waits for it at every
    parallel region: measured with bench/threads.py on 2 cores, a tiny-model sample with one busy
    neighbour takes 4-5x its idle time with 2 threads but 0.9-1.8x with 1.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = running_elsewhere() if busy is None else busy
    return max(1, cores - busy)


def running_elsewhere(samples: int = 5) -> int:
    """Threads of other processes running right now: the median over a few 10 ms samples of
    /proc/loadavg's runnable count, minus this process. (Not the load average: it still counts
    the previous command of a script for a minute after it ended.) 0 where /proc is missing."""
    counts = []
    for _ in range(samples):
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return 0
        counts.append(max(0, running - 1))
        time.sleep(0.01)
    return sorted(counts)[len(counts) // 2]


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None: keep its default, one per core); returns the count."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# What the allocators say they were asked for: the CPU's "you tried to allocate 65000000000 bytes",
# CUDA's "Tried to allocate 20.00 GiB"
_ASKED = re.compile(r"tried to allocate (\d+) bytes|tried to allocate ([\d.]+ [KMGT]i?B)", re.IGNORECASE)


def batch_out_of_memory(error: BaseException, batch_size: int, device: torch.device) -> LladaError | None:
    """One line for a training step whose allocation failed (CUDA's OutOfMemoryError, the CPU or MPS
    allocator's RuntimeError, Python's MemoryError); None for any other error."""
    text = str(error)
    failed = isinstance(error, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)
    )
    if not failed:
        return None
    asked = _ASKED.search(text)
    size = "" if asked is None else asked.group(2) or f"{int(asked.group(1)) / 2**30:,.1f} GiB"
    wanted = f" (one allocation of {size})" if size else ""
    return LladaError(
        f"a micro-batch of {batch_size} rows does not fit in {device.type} memory{wanted}: use a smaller "
        f"{named('batch_size')} with a larger {named('grad_accum')}, which keeps the rows of an "
        "optimizer step"
    )
