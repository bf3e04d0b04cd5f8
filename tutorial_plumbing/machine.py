"""The machine the notebooks run on: a quiet TensorFlow, Colab or not, GPU, precision, memory.

Importing this module does not import TensorFlow: a notebook calls start_tensorflow_quietly()
first, and TensorFlow starts inside it.
"""

import contextlib
import os
import sys
from pathlib import Path

from .messages import CannotContinue, say


def start_tensorflow_quietly():
    """Import TensorFlow with its C++ notes sent to the kernel's log, not the notebook.

    TensorFlow's C++ code writes notes (oneDNN, CUDA, XLA) straight to the error stream, file
    descriptor 2, past Python, at start-up and whenever it likes later. In Jupyter that stream
    shows on the page. Here it goes to the kernel's own log instead, for good: the terminal
    that runs Jupyter, Colab's runtime logs, or run_series.py's kernel_messages.log. Python's
    own errors and warnings still show: they go through Python. In a plain script the error
    stream is already the terminal, and stays so. Returns nothing, so that the notebook cell
    that calls it shows nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        kernel_log = os.dup(sys.stderr.fileno())  # in Jupyter: the kernel's, not the page's
    except (AttributeError, OSError, ValueError):  # a notebook front end without one
        kernel_log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(kernel_log, 2)
    os.close(kernel_log)
    import tensorflow

    # In notebooks, TensorFlow's Python log also says INFO; scripts start at WARNING.
    logger = tensorflow.get_logger()
    logger.setLevel("WARNING")
    # A last, smaller batch, or one photo after a batch, traces Keras's predict step again;
    # after five such traces TensorFlow warns about speed. Here that costs well under a
    # second, and the reader can do nothing about it.
    logger.addFilter(lambda record: "triggered tf.function retracing" not in record.getMessage())


@contextlib.contextmanager
def hide_c_messages():
    """Send what C++ code writes to the error stream nowhere while the block runs.

    For scripts and tests, where the error stream is the terminal: TensorFlow's start-up notes
    there ignore TF_CPP_MIN_LOG_LEVEL. Python's own errors and warnings still show.
    """
    sys.stderr.flush()
    saved, nowhere = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(nowhere)


def running_in_colab() -> bool:
    return "google.colab" in sys.modules


def check_gpu() -> bool:
    """Say which GPU TensorFlow sees, or how to get one."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        print(say("GPU found: {name}.", name=details.get("device_name", gpus[0].name)))
        return True
    if running_in_colab():
        print(
            say(
                "No GPU found. In the menu choose Runtime > Change runtime type, pick a GPU "
                "(for example T4), save, then run the notebook again from the top."
            )
        )
    else:
        print(say("No GPU found: TensorFlow runs on the CPU. Everything works, only slower."))
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
    import keras
    import tensorflow as tf

    forced = os.environ.get(FORCE_PRECISION)
    gpus = [] if forced else tf.config.list_physical_devices("GPU")
    if forced:
        if forced not in POLICIES:
            raise CannotContinue(
                say(
                    "{variable}={forced!r} is not a policy the notebooks know. What to do: "
                    "set it to one of {policies}, or unset it to let the machine decide.",
                    variable=FORCE_PRECISION,
                    forced=forced,
                    policies=", ".join(POLICIES),
                )
            )
        policy = forced
        reason = say("the environment variable {variable} asks for it", variable=FORCE_PRECISION)
    elif gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        major, minor = details.get("compute_capability") or (0, 0)
        if major >= 7:
            policy = "mixed_float16"
            reason = say(
                "the GPU has Tensor Cores (compute capability {capability})",
                capability=f"{major}.{minor}",
            )
        else:
            policy, reason = "float32", say("this GPU has no Tensor Cores")
    elif cpu_supports_bfloat16():
        policy, reason = "mixed_bfloat16", say("the CPU does bfloat16 math in hardware")
    else:
        policy, reason = "float32", say("the CPU has no fast 16-bit math")
    keras.mixed_precision.set_global_policy(policy)
    print(say("Precision: {policy}, because {reason}.", policy=policy, reason=reason))
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
    if fits:
        decision = say("keeping them in memory")
    else:
        decision = say("too large: decoding every epoch instead")
    print(
        say(
            "Decoded {split} images need {needed:.2f} GiB ({free:.1f} GiB free): {decision}.",
            split=what,
            needed=size_bytes / 2**30,
            free=free / 2**30,
            decision=decision,
        )
    )
    return fits
