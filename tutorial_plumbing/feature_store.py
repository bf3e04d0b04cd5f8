"""The feature store: what the frozen layers output, computed once and read many times."""

import numpy as np
import tensorflow as tf

from .data_in import without_autotune


class FeatureFile:
    """Cached features stored row after row in a file; reads only the rows asked for.

    The operating system keeps the file in memory when it fits and reads it from disk when it
    does not, so a large cache never has to fit in this process's memory.
    """

    def __init__(self, path, row_shape, rows):
        self.path, self.row_shape, self.rows = str(path), tuple(row_shape), rows
        self.row_bytes = int(np.prod(row_shape)) * 2  # float16
        self.shape = (rows, *self.row_shape)
        self.nbytes = rows * self.row_bytes

    def __len__(self):
        return self.rows

    def __getitem__(self, indices):
        with open(self.path, "rb", buffering=0) as file:
            rows = []
            for index in np.atleast_1d(indices):
                file.seek(int(index) * self.row_bytes)
                rows.append(np.frombuffer(file.read(self.row_bytes), dtype=np.float16))
        return np.stack(rows).reshape(-1, *self.row_shape)


def cache_features(extractor, batches, cache_file=None):
    """Run `extractor` once over `batches`; return (features as float16, labels).

    Without cache_file the features stay in memory (fine for 512 numbers per image). With
    cache_file they go to that file and come back as a FeatureFile (for large feature maps).
    """
    labels, chunks = [], []
    output = open(cache_file, "wb") if cache_file else None
    try:
        for images, batch_labels in batches:
            features = np.asarray(extractor.predict_on_batch(images), dtype=np.float16)
            if output:
                output.write(features.tobytes())
            else:
                chunks.append(features)
            labels.append(batch_labels.numpy())
    finally:
        if output:
            output.close()
    labels = np.concatenate(labels)
    row_shape = tuple(extractor.output.shape[1:])
    if output:
        return FeatureFile(cache_file, row_shape, len(labels)), labels
    return np.concatenate(chunks), labels


def cached_batches(features, labels, batch_size, shuffle=False, seed=None):
    """Batches of (cached features, label) for fit(), reading only the rows each batch needs."""
    feature_shape = [None, *features.shape[1:]]
    label_dtype = tf.as_dtype(labels.dtype)

    def take(indices):
        indices = np.sort(indices)  # reading in file order is faster
        return np.asarray(features[indices], dtype=np.float16), labels[indices]

    def read(indices):
        batch, batch_labels = tf.numpy_function(take, [indices], (tf.float16, label_dtype))
        return tf.ensure_shape(batch, feature_shape), tf.ensure_shape(batch_labels, [None])

    order = tf.data.Dataset.range(len(labels))
    if shuffle:
        order = order.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotune(batches.prefetch(tf.data.AUTOTUNE))
