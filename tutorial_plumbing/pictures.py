"""Pictures: grids of images, learning curves, heatmaps over photos."""

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib.ticker import MaxNLocator

from .messages import say


def show_images(images, titles, columns=4, path=None) -> None:
    """A grid of images (0-255 values) with a title under each."""
    rows = int(np.ceil(len(images) / columns))
    plt.figure(figsize=(3 * columns, 3.2 * rows))
    for index, (image, title) in enumerate(zip(images, titles)):
        plt.subplot(rows, columns, index + 1)
        plt.imshow(np.clip(np.asarray(image), 0, 255).astype("uint8"))
        plt.title(title, fontsize=10)
        plt.axis("off")
    plt.tight_layout()
    if path:
        plt.savefig(path, dpi=80, bbox_inches="tight")
    plt.show()


def plot_history(phases, path=None) -> None:
    """Accuracy and loss per epoch for one or more training phases, one after the other.

    `phases` is a list of (name, history dict). A dashed line marks where each later phase
    (for example fine-tuning) starts.
    """
    figure, axes = plt.subplots(1, 2, figsize=(12, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        start = 0
        for index, (name, history) in enumerate(phases):
            epochs = np.arange(start + 1, start + len(history[metric]) + 1)
            axis.plot(epochs, history[metric], "o-", label=say("train ({phase})", phase=name))
            axis.plot(
                epochs,
                history[f"val_{metric}"],
                "s--",
                label=say("validation ({phase})", phase=name),
            )
            if index > 0:
                axis.axvline(start + 0.5, color="gray", linestyle=":")
                axis.text(  # along the line, so that it fits however few epochs follow
                    start + 0.45,
                    0.98,
                    say("{phase} starts", phase=name),
                    rotation=90,
                    ha="right",
                    va="top",
                    color="gray",
                    transform=axis.get_xaxis_transform(),
                )
            start += len(history[metric])
        axis.set_xlabel(say("epoch"))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        axis.set_title(say("Accuracy") if metric == "accuracy" else say("Loss"))
        axis.legend()
    figure.tight_layout()
    if path:
        figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.show()


def overlay_heatmap(image, heatmap, opacity=0.45) -> np.ndarray:
    """An image (0-255) with a heatmap (0-1) laid over it in colour, as uint8."""
    image = np.asarray(image, dtype=np.float32)
    resized = tf.image.resize(heatmap[..., None], image.shape[:2]).numpy()[..., 0]
    colours = plt.get_cmap("jet")(np.clip(resized, 0, 1))[..., :3] * 255
    return np.clip((1 - opacity) * image + opacity * colours, 0, 255).astype(np.uint8)
