"""The feature store: what the frozen layers output, computed once and read many times."""

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .data_in import without_autotune
from .messages import CannotContinue, say


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


class Progress:
    """Prints, every `every` seconds and at the end: images done, images per second, time left."""

    def __init__(self, name, total=None, every=15.0):
        self.name, self.total, self.every = name, total, every
        self.done, self.start = 0, time.time()
        self.last, self.reported = self.start, None

    def add(self, images):
        self.done += images
        if time.time() - self.last >= self.every:
            self.report()

    def report(self):
        self.last, self.reported = time.time(), self.done
        print(self.line(), flush=True)

    def finish(self):
        """The last line, unless the line printed last already said it."""
        if self.reported != self.done:
            self.report()

    def line(self):
        seconds = max(time.time() - self.start, 1e-9)
        rate = self.done / seconds
        if self.total and 0 < self.done < self.total:
            left = (self.total - self.done) / rate
            return say(
                "{name}: {done:,} of {total:,} images, {rate:,.0f}/s, about {left:,.0f} s left",
                name=self.name,
                done=self.done,
                total=self.total,
                rate=rate,
                left=left,
            )
        return say(
            "{name}: {done:,} images in {seconds:.1f} s, {rate:,.0f}/s",
            name=self.name,
            done=self.done,
            seconds=seconds,
            rate=rate,
        )


def cache_features(extractor, batches, cache_file=None, progress=None):
    """Run `extractor` once over `batches`; return (features as float16, labels).

    Without cache_file the features stay in memory (fine for 512 numbers per image). With
    cache_file they go to that file and come back as a FeatureFile (for large feature maps).
    `progress` (a Progress) hears of every batch.
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
            labels.append(np.asarray(batch_labels))
            if progress:
                progress.add(len(features))
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


STORE_SPLITS = ("train", "validation", "test")


def layer_before(model, layer_name):
    """The name of the layer just before `layer_name` in `model`."""
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        blocks = ", ".join(name for name in names if name.endswith("_conv1"))
        raise CannotContinue(
            say(
                "UNFREEZE_FROM={layer!r} is not a layer. Try one of: {blocks}",
                layer=layer_name,
                blocks=blocks,
            )
        )
    return names[names.index(layer_name) - 1]


def last_frozen_layer(model):
    """The layer before the first one that learns: what the frozen store keeps the output of."""
    names = [layer.name for layer in model.layers]
    first = next(i for i, layer in enumerate(model.layers[1:], 1) if layer.trainable)
    return names[first - 1]


def reads_only_from(model, layer_name) -> bool:
    """Whether the layers after `layer_name` compute the output from its output alone.

    Walks back from the model's output; reaching the input without passing `layer_name`
    means a connection goes around it (a residual one, as in ConvNeXt), and a store of
    `layer_name`'s output is not enough to run the rest of the model.
    """
    steps = [step for step in model.operations if not isinstance(step, keras.layers.InputLayer)]
    made_by = {id(step.output): step for step in steps}  # layers, and ops such as x * y
    cut = model.get_layer(layer_name).output
    waiting, seen = [model.output], set()
    while waiting:
        tensor = waiting.pop()
        if tensor is cut or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if id(tensor) not in made_by:
            return False  # the model's input, reached around the cut
        inputs = made_by[id(tensor)].input
        waiting.extend(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    return True


def check_store_layer(model, layer_name) -> None:
    """Stop with a clear message when the frozen store cannot cut `model` after `layer_name`."""
    if not reads_only_from(model, layer_name):
        raise CannotContinue(
            say(
                "The layers after {layer} also read the output of earlier layers, so they "
                "cannot run from a store of what {layer} outputs.\nWhat to do: set "
                "USE_FEATURE_CACHE = False in parts 2 and 3 (every epoch then runs the whole "
                "network), or choose an UNFREEZE_FROM that starts a new stage of the base.",
                layer=layer_name,
            )
        )


def store_fingerprint(data, image_size, model, layer) -> dict:
    """What stored outputs depend on: data and splits, image size, weights, layer, precision.

    The weights are a digest of the frozen layers' actual numbers, so random weights (WEIGHTS
    = None) with another seed, or other pretrained weights, never reuse a store.
    """
    membership = hashlib.sha256()
    for split in STORE_SPLITS:
        paths = data.file_paths(split)  # None for TFDS: its slices are fixed
        membership.update(json.dumps([split, data.counts[split], paths]).encode())
    weights = hashlib.sha256()
    for current in model.layers:
        for weight in current.weights:
            weights.update(np.asarray(weight.numpy(), dtype=np.float32).tobytes())
        if current.name == layer:
            break
    return {
        "data_source": data.source,
        "split_membership": membership.hexdigest()[:16],
        "IMG_SIZE": int(image_size),
        "weights": weights.hexdigest()[:16],
        "layer": layer,
        "precision": model.get_layer(layer).dtype_policy.name,
        "stored_as": "float16",
    }


def open_frozen_store(folder, fingerprint, quiet=False, building=True):
    """The stored splits {split: (FeatureFile, labels)} if `folder` holds them for `fingerprint`.

    None otherwise, with a one-line note that says why (unless quiet) and what happens instead:
    the store is built (`building`), or the whole model runs.
    """
    folder = Path(folder)
    saved_path = folder / "fingerprint.json"
    when_missing, when_changed = say("building it"), say("rebuilding it")
    if not building:
        when_missing = when_changed = say("the whole model runs instead")
    if not saved_path.is_file():
        if not quiet:
            print(say("No frozen store in {folder} yet: {then}.", folder=folder, then=when_missing))
        return None
    saved = json.loads(saved_path.read_text())
    changed = [
        name for name in fingerprint if saved.get("fingerprint", {}).get(name) != fingerprint[name]
    ]
    if changed:
        if "layer" in changed and "weights" in changed:
            changed.remove("weights")  # other layers, other weights: not worth a mention
        if not quiet:
            details = ", ".join(
                f"{name} {saved.get('fingerprint', {}).get(name)!r} -> {fingerprint[name]!r}"
                for name in changed
            )
            print(
                say(
                    "The frozen store in {folder} was made for other settings ({details}): {then}.",
                    folder=folder,
                    details=details,
                    then=when_changed,
                )
            )
        return None
    row_shape = tuple(saved["row_shape"])
    stored = {}
    for split in STORE_SPLITS:
        labels = np.load(folder / f"{split}.labels.npy")
        stored[split] = (FeatureFile(folder / f"{split}.f16", row_shape, len(labels)), labels)
    return stored


def check_free_space(folder, needed_bytes) -> None:
    """Stop with a clear message when `needed_bytes` will not fit on the disk of `folder`."""
    folder = Path(folder)
    existing = next(parent for parent in [folder, *folder.parents] if parent.exists())
    free = shutil.disk_usage(existing).free
    if needed_bytes > free:
        raise CannotContinue(
            say(
                "The frozen store needs {needed:.2f} GiB in {folder}, but only {free:.2f} GiB "
                "are free there.\nWhat to do: free some disk space, set ARTIFACTS_DIR to a disk "
                "with more room, use a smaller IMG_SIZE, or set USE_FEATURE_CACHE = False "
                "(slower: every epoch runs the whole network).",
                needed=needed_bytes / 2**30,
                folder=folder,
                free=free / 2**30,
            )
        )


def build_frozen_store(folder, fingerprint, extractor, split_batches, counts):
    """Run `extractor` once over each split's batches and store its outputs in `folder`.

    split_batches: {split: batches of (images, labels)}; counts: {split: number of images}.
    Written to a temporary folder first, then renamed: a store cut off half-way is never used.
    Returns the stored splits, as open_frozen_store does.
    """
    folder = Path(folder)
    row_shape = tuple(extractor.output.shape[1:])
    total = sum(counts.values())
    needed = total * int(np.prod(row_shape)) * 2
    check_free_space(folder.parent, needed)
    print(
        say(
            "Frozen store: {images:,} images x {shape} float16 = {mib:,.1f} MiB in {folder}",
            images=total,
            shape=" x ".join(map(str, row_shape)),
            mib=needed / 2**20,
            folder=folder,
        )
    )
    for left_over in folder.parent.glob(f"{folder.name}.partial-*"):  # from a run cut off
        shutil.rmtree(left_over, ignore_errors=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True)
    progress = Progress(
        say("Through the frozen layers up to {layer}", layer=fingerprint["layer"]), total
    )
    for split in STORE_SPLITS:
        _, labels = cache_features(
            extractor, split_batches[split], partial / f"{split}.f16", progress
        )
        np.save(partial / f"{split}.labels.npy", labels)
    progress.finish()
    (partial / "fingerprint.json").write_text(
        json.dumps({"fingerprint": fingerprint, "row_shape": list(row_shape)}, indent=2)
    )
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return open_frozen_store(folder, fingerprint, quiet=True)


def frozen_store(folder, data, model, layer, image_size, batch_size):
    """The outputs of `model`'s layers up to `layer` for every image of every split.

    Reused from `folder` when its fingerprint matches; built there (once) otherwise.
    """
    check_store_layer(model, layer)
    fingerprint = store_fingerprint(data, image_size, model, layer)
    stored = open_frozen_store(folder, fingerprint)
    if stored is not None:
        mib = sum(features.nbytes for features, _ in stored.values()) / 2**20
        print(
            say(
                "Reusing the frozen store in {folder} ({layer} outputs, {mib:,.1f} MiB)",
                folder=folder,
                layer=layer,
                mib=mib,
            )
        )
        return stored
    extractor = keras.Model(model.input, model.get_layer(layer).output)
    batches = {split: data.batches(split, image_size, batch_size) for split in STORE_SPLITS}
    counts = {split: sum(data.counts[split]) for split in STORE_SPLITS}
    return build_frozen_store(folder, fingerprint, extractor, batches, counts)


def head_and_batches_from_store(model, data, unfreeze_from, folder, image_size, batch_size, seed):
    """Part 2 on the frozen store: (the head as a model of its own, train and validation batches).

    The layers that part 3 keeps frozen, those before `unfreeze_from`, run once per image for
    every split, and their output goes to `folder` (see frozen_store): parts 3 and 4 read it
    again. The rest of the frozen base (block5 and the pooling, for VGG16) turns each stored map
    into the head's 512 numbers, once. The head then trains on those for as many epochs as you
    like: the same layers as in `model`, so `model` learns with it.
    """
    started = time.time()
    store_layer = layer_before(model, unfreeze_from)
    stored = frozen_store(folder, data, model, store_layer, image_size, batch_size)
    rest_of_base = keras.Model(
        model.get_layer(store_layer).output, model.get_layer("pooled_features").output
    )
    train = cache_features(rest_of_base, cached_batches(*stored["train"], batch_size))
    validation = cache_features(rest_of_base, cached_batches(*stored["validation"], batch_size))
    print(
        say(
            "The head's features: {images:,} images in {seconds:,.1f} s, {mib:,.1f} MiB",
            images=len(train[1]) + len(validation[1]),
            seconds=time.time() - started,
            mib=(train[0].nbytes + validation[0].nbytes) / 2**20,
        )
    )
    head = keras.Model(model.get_layer("pooled_features").output, model.output)
    train_batches = cached_batches(*train, batch_size, shuffle=True, seed=seed)
    return head, train_batches, cached_batches(*validation, batch_size)


def unfrozen_and_batches_from_store(model, data, last_frozen, folder, image_size, batch_size, seed):
    """Part 3 on the frozen store: (the layers after `last_frozen` as a model, and the batches
    of stored maps for train, validation and test).

    The store of part 2 is reused when it matches (see frozen_store), built again when not.
    Each epoch then runs only the unfrozen layers.
    """
    stored = frozen_store(folder, data, model, last_frozen, image_size, batch_size)
    unfrozen = keras.Model(model.get_layer(last_frozen).output, model.output)
    train = cached_batches(*stored["train"], batch_size, shuffle=True, seed=seed)
    validation = cached_batches(*stored["validation"], batch_size)
    return unfrozen, train, validation, cached_batches(*stored["test"], batch_size)
