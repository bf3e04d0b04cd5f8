"""Label direction: the images under class_names[i]/ get label i, in every split and source."""

import functools
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import cats_vs_dogs_download

from tutorial_plumbing import data_in
from tutorial_plumbing.data_in import (
    CATS_VS_DOGS_SPLITS,
    load_cats_vs_dogs,
    load_two_class_data,
    resize_image,
)

SPLITS = ["train", "validation", "test"]


def test_images_under_each_class_folder_get_that_class_label(easy_folder):
    data = load_two_class_data(str(easy_folder), seed=0)
    assert data.class_names == ["blues", "reds"]  # sorted folder names: blues is 0, reds is 1
    for split in SPLITS:
        paths = data.file_paths(split)
        images, labels = [], []
        for batch, batch_labels in data.batches(split, 32, 8):
            images.append(batch.numpy())
            labels.append(batch_labels.numpy())
        images, labels = np.concatenate(images), np.concatenate(labels)
        assert len(paths) == len(labels) == sum(data.counts[split])
        assert set(labels) == {0, 1}
        for path, label, image in zip(paths, labels, images):
            assert Path(path).parent.name == data.class_names[label], path
            # The folder says the class; the pixels must agree (reds are red, blues are blue).
            looks_red = image[..., 0].mean() > image[..., 2].mean()
            assert looks_red == (data.class_names[label] == "reds"), path
        counted = [int(np.sum(labels == 0)), int(np.sum(labels == 1))]
        assert counted == data.counts[split]


@pytest.fixture
def cats_vs_dogs(tmp_path, monkeypatch):
    """TFDS's own cats_vs_dogs builder, on the archive of tests/cats_vs_dogs_archive.py."""
    cats_vs_dogs_download(tmp_path)
    monkeypatch.setattr(tfds, "builder", functools.partial(tfds.builder, data_dir=str(tmp_path)))
    monkeypatch.setattr(data_in, "host_reachable", lambda host: True)
    return tmp_path


def test_cats_vs_dogs_names_and_labels_come_from_the_dataset(cats_vs_dogs):
    data = load_cats_vs_dogs()
    names = tfds.builder("cats_vs_dogs").info.features["label"].names
    assert data.class_names == names == ["cat", "dog"]
    for split, slice_spec in CATS_VS_DOGS_SPLITS.items():
        raw = tfds.load("cats_vs_dogs", split=slice_spec, data_dir=str(cats_vs_dogs))
        examples = list(raw.as_numpy_iterator())
        expected_labels = [int(example["label"]) for example in examples]
        # The folder in the archive says the class: PetImages/Cat/ is 0, PetImages/Dog/ is 1.
        folders = [example["image/filename"].decode().split("/")[1] for example in examples]
        assert [names.index(folder.lower()) for folder in folders] == expected_labels
        batches = list(data.batches(split, 32, 8))
        labels = np.concatenate([labels.numpy() for _, labels in batches])
        images = np.concatenate([images.numpy() for images, _ in batches])
        assert labels.tolist() == expected_labels, split
        expected_first = resize_image(examples[0]["image"], 32).numpy()
        np.testing.assert_allclose(images[0], expected_first, atol=1e-3)
        looks_red = images[..., 0].mean(axis=(1, 2)) > images[..., 2].mean(axis=(1, 2))
        assert (looks_red == (labels == 0)).all(), "cats are red in the archive"
        assert data.counts[split] == [expected_labels.count(0), expected_labels.count(1)]
