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


def not_available_error() -> RuntimeError:
    """The error for using device "cuda" where it cannot be used ("CUDA is not available: ...")."""
    reason = unavailable_reason() if not is_available() else \
        "device 'cuda' tensors are not supported by this build yet"
    prefix = "CUDA is not available"
    return RuntimeError(reason if reason.startswith(prefix) else f"{prefix}: {reason}")


def synchronize(device=None) -> None:
    """Waits for the device's queued work; raises RuntimeError when CUDA is not available."""
    raise not_available_error()


__all__ = ["is_built", "is_available", "device_count", "is_emulated", "unavailable_reason",
           "synchronize"]
