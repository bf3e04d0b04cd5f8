"""Evaluation, explanation and export of a trained model."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data_in import resize_image
from .messages import CannotContinue
from .your_images import inspect_image, load_image


def binary_metrics(labels, probabilities, threshold=0.5) -> dict:
    """Accuracy, precision, recall, F1 (for class 1), ROC AUC and the confusion matrix."""
    from sklearn import metrics

    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    matrix = metrics.confusion_matrix(labels, predicted, labels=[0, 1])
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else None,
        "confusion_matrix": matrix.tolist(),  # rows: true class, columns: predicted class
    }


def grad_cam(model, images, layer_name="block5_conv3"):
    """Grad-CAM heatmaps (0-1, one per image, at the layer's resolution) and probabilities.

    Each heatmap shows where `layer_name`'s features pushed the model towards the class it
    predicted. It needs the layer in `model` itself, not inside a nested model: the series
    builds VGG16 on the model's own input (input_tensor=...) for exactly this reason.
    """
    explainer = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        feature_maps, probabilities = explainer(images, training=False)
        probabilities = tf.cast(probabilities[:, 0], tf.float32)
        # The score of the predicted class: p for class 1, 1 - p for class 0.
        scores = tf.where(probabilities >= 0.5, probabilities, 1.0 - probabilities)
    gradients = tf.cast(tape.gradient(scores, feature_maps), tf.float32)
    feature_maps = tf.cast(feature_maps, tf.float32)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    heatmaps = tf.nn.relu(tf.reduce_sum(feature_maps * channel_weights, axis=-1))
    peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
    heatmaps = tf.math.divide_no_nan(heatmaps, peak)
    return heatmaps.numpy(), probabilities.numpy()


def predict_file(model, path, image_size):
    """(probability of class 1, the image as the model saw it) for one image file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CannotContinue(f"No file at {path}. What to do: check IMAGE_PATH.")
    problem, _, _, _ = inspect_image(path)
    if problem:
        raise CannotContinue(f"Cannot use {path.name}: {problem}.")
    image = resize_image(load_image(path), image_size)
    probability = float(model.predict(image[None], verbose=0)[0, 0])
    return probability, image.numpy()


def float32_copy(model):
    """The same model and weights, computing in float32: what SavedModel and TFLite need.

    Mixed-precision layers (bfloat16 on CPUs, float16 on GPUs) do not convert to TFLite.
    """

    def to_float32(config):
        if isinstance(config, dict):
            if str(config.get("class_name", "")).endswith("DTypePolicy"):
                return "float32"
            return {key: to_float32(value) for key, value in config.items()}
        if isinstance(config, list):
            return [to_float32(value) for value in config]
        return config

    copy = keras.Model.from_config(to_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
