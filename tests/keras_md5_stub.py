"""The one stub on the path of weights="imagenet": Keras's md5 check of a cached file.

keras/src/utils/file_utils.py: get_file() finds the weights file in $KERAS_HOME/models/ and
calls validate_file(path, published_md5). The test files (tests/official_weights.py) hold other
numbers than the published files, so they cannot have the published md5. For them, and only
for them, the check compares with their own md5 instead: it still runs, so a test file changed
after it was written fails it, and Keras then tries to download (and fails, offline).

No heavy import here: a kernel installs the stub at start-up, before the notebook imports
Keras, so that the notebook's own quiet start of TensorFlow is what the tests see.
"""

import importlib.abc
import importlib.util
import sys

KERAS_FILE_UTILS = "keras.src.utils.file_utils"


def accept_test_files(file_utils, test_files: dict) -> None:
    """Patch file_utils.validate_file; test_files is {path: md5 of the file written}."""
    original = getattr(file_utils.validate_file, "original", file_utils.validate_file)

    def validate_file(fpath, file_hash, *args, **kwargs):
        return original(fpath, test_files.get(str(fpath), file_hash), *args, **kwargs)

    validate_file.original = original
    file_utils.validate_file = validate_file


class _PatchWhenLoaded(importlib.abc.MetaPathFinder):
    def __init__(self, test_files):
        self.test_files = test_files

    def find_spec(self, name, path=None, target=None):
        if name != KERAS_FILE_UTILS:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            accept_test_files(module, self.test_files)

        spec.loader.exec_module = exec_module
        return spec


def install(test_files: dict) -> None:
    """Stub the check now if Keras is loaded, else as soon as it loads."""
    if KERAS_FILE_UTILS in sys.modules:
        accept_test_files(sys.modules[KERAS_FILE_UTILS], test_files)
    else:
        sys.meta_path.insert(0, _PatchWhenLoaded(test_files))
