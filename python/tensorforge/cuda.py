"""CUDA device queries. Importing never fails: without a GPU or driver,
``is_available()`` is False and ``unavailable_reason()`` says why."""
from . import _C


def is_built() -> bool:
    """Whether this build contains the CUDA backend."""
    return bool(_C.cuda_status()["built"])


def is_available() -> bool:
    """Whether a CUDA device can be used (built with CUDA, driver and device present)."""
    return bool(_C.cuda_status()["available"])


def device_count() -> int:
    """Number of usable CUDA devices (0 when not available)."""
    return int(_C.cuda_status()["device_count"])


def is_emulated() -> bool:
    """True only in a test build whose "cuda" device runs the kernels on the CPU."""
    return bool(_C.cuda_status().get("emulated", False))


def unavailable_reason() -> str:
    """Why CUDA is not available, in the runtime's words ('' when it is)."""
    return str(_C.cuda_status()["reason"])


def synchronize(device=None) -> None:
    """Waits for the device's queued work; raises RuntimeError when CUDA is not available."""
    if not is_available():
        raise RuntimeError(f"CUDA is not available: {unavailable_reason()}")
    raise RuntimeError("device 'cuda' tensors are not supported by this build yet")


__all__ = ["is_built", "is_available", "device_count", "is_emulated", "unavailable_reason",
           "synchronize"]
