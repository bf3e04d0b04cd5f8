"""The machine the notebooks run on: Colab or not, GPU, number precision, Drive, memory."""

import contextlib
import os
import sys
from pathlib import Path

import keras
import tensorflow as tf

from .messages import CannotContinue


def running_in_colab() -> bool:
    return "google.colab" in sys.modules


def check_gpu() -> bool:
    """Say which GPU TensorFlow sees, or how to get one."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        print(f"GPU found: {details.get('device_name', gpus[0].name)}.")
        return True
    if running_in_colab():
        print(
            "No GPU found. In the menu choose Runtime > Change runtime type, pick a GPU "
            "(for example T4), save, then run the notebook again from the top."
        )
    else:
        print("No GPU found: TensorFlow runs on the CPU. Everything works, only slower.")
    return False


def cpu_supports_bfloat16() -> bool:
    """True when the CPU does bfloat16 math in hardware (AVX512-BF16 or AMX), as Linux reports."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


# Set this environment variable to one of POLICIES to force that policy (the tests and CI run
# the notebooks under each one, whatever the hardware).
FORCE_PRECISION = "TUTORIAL_PRECISION"
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def choose_precision() -> str:
    """Set Keras's global dtype policy to the fastest safe one for this machine and say why."""
    forced = os.environ.get(FORCE_PRECISION)
    gpus = [] if forced else tf.config.list_physical_devices("GPU")
    if forced:
        if forced not in POLICIES:
            raise CannotContinue(
                f"{FORCE_PRECISION}={forced!r} is not a policy the notebooks know. What to do: "
                f"set it to one of {', '.join(POLICIES)}, or unset it to let the machine decide."
            )
        policy, reason = forced, f"the environment variable {FORCE_PRECISION} asks for it"
    elif gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        major, minor = details.get("compute_capability") or (0, 0)
        if major >= 7:
            policy = "mixed_float16"
            reason = f"the GPU has Tensor Cores (compute capability {major}.{minor})"
        else:
            policy, reason = "float32", "this GPU has no Tensor Cores"
    elif cpu_supports_bfloat16():
        policy = "mixed_bfloat16"
        reason = "the CPU does bfloat16 math in hardware"
    else:
        policy, reason = "float32", "the CPU has no fast 16-bit math"
    keras.mixed_precision.set_global_policy(policy)
    print(f"Precision: {policy}, because {reason}.")
    return policy


GOOGLE_DRIVE = "/content/drive"  # where Colab mounts Google Drive


def mount_drive_if_needed(*paths) -> None:
    """In Colab, mount Google Drive when a path lives on it (/content/drive/...)."""
    if running_in_colab() and any(str(p).startswith(GOOGLE_DRIVE) for p in paths if p):
        from google.colab import drive

        drive.mount(GOOGLE_DRIVE)


def fits_in_memory(size_bytes: int, what: str) -> bool:
    """True (and says so) when size_bytes takes at most half the memory that is free now."""
    try:
        meminfo = Path("/proc/meminfo").read_text().split("MemAvailable:")[1]
        free = int(meminfo.split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        free = 0
    fits = size_bytes <= free / 2
    decision = "keeping them in memory" if fits else "too large: decoding every epoch instead"
    print(
        f"Decoded {what} images need {size_bytes / 2**30:.2f} GiB "
        f"({free / 2**30:.1f} GiB free): {decision}."
    )
    return fits


@contextlib.contextmanager
def hide_c_messages():
    """Send what C++ code writes to the error stream nowhere while the block runs.

    Some libraries (TFLite, TensorFlow at start-up) write notes there directly, past Python and
    its warnings filters. Python's own errors and warnings still show: they go through Python.
    """
    saved, nowhere = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(nowhere)
