"""Evaluation and explanation of a trained model: metrics, Grad-CAM, one photo's answer."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data_in import resize_image
from .messages import CannotContinue, say
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
        raise CannotContinue(say("No file at {path}. What to do: check IMAGE_PATH.", path=path))
    problem, _, _, _ = inspect_image(path)
    if problem:
        raise CannotContinue(say("Cannot use {file}: {problem}.", file=path.name, problem=problem))
    image = resize_image(load_image(path), image_size)
    probability = float(model.predict(image[None], verbose=0)[0, 0])
    return probability, image.numpy()


def metric_names() -> dict:
    """What the reader calls each metric, in their language; the keys stay as in the JSON files.

    The keys are the names Keras and scikit-learn use (accuracy, roc_auc); a Portuguese reader
    sees acurácia, precisão, revocação.
    """
    return {
        "threshold": say("threshold"),
        "accuracy": say("accuracy"),
        "precision": say("precision"),
        "recall": say("recall"),
        "f1": say("F1"),
        "roc_auc": say("ROC AUC"),
    }
