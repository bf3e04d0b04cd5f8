"""Label direction: the images under class_names[i]/ get label i, in every split and source."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tutorial_plumbing as plumbing

SPLITS = ["train", "validation", "test"]


def test_images_under_each_class_folder_get_that_class_label(easy_folder):
    data = plumbing.load_two_class_data(str(easy_folder), seed=0)
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
def mock_cats_vs_dogs(monkeypatch):
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    with tfds.testing.mock_data(num_examples=30):
        yield


def test_cats_vs_dogs_names_and_labels_come_from_the_dataset(mock_cats_vs_dogs):
    data = plumbing.load_cats_vs_dogs()
    names = tfds.builder("cats_vs_dogs").info.features["label"].names
    assert data.class_names == names == ["cat", "dog"]
    for split, slice_spec in plumbing.CATS_VS_DOGS_SPLITS.items():
        raw = tfds.load("cats_vs_dogs", split=slice_spec, as_supervised=True)
        expected_labels = [int(label) for _, label in raw]
        expected_first = plumbing.resize_image(next(iter(raw))[0], 32).numpy()
        batches = list(data.batches(split, 32, 8))
        labels = np.concatenate([labels.numpy() for _, labels in batches])
        assert labels.tolist() == expected_labels, split
        np.testing.assert_allclose(batches[0][0][0].numpy(), expected_first, atol=1e-3)
        assert data.counts[split] == [expected_labels.count(0), expected_labels.count(1)]
