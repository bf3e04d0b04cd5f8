"""The helpers of the transfer-learning series: everything the notebooks need but do not teach.

The lesson's own code (build, freeze, compile, fit, unfreeze) stays in the notebooks, where it
is taught; model.py is generated from those cells, so that notebook 05 and the benchmark use
the very same model. A notebook imports what it uses from the module that holds it:

- data_in: where data enters: TFDS cats_vs_dogs or your folder, split and streamed (tf.data)
- your_images: your folder, .zip or upload: every file checked, never changed
- duplicates: copies of a photo, blank images, tiny images
- bases: the pretrained bases: the input each expects, its ImageNet weights, its cost
- model: the model of the series, as notebooks 02 and 03 build and unfreeze it (generated)
- feature_store: what the frozen layers output, computed once, read many times
- training: what learns, and the history of every epoch across restarts
- evaluation: metrics, Grad-CAM, one photo's answer
- saving: models saved and loaded back, float32 copies for export, JSON numbers
- pictures: image grids, learning curves, heatmaps
- machine: a quiet TensorFlow, the GPU, the precision, Google Drive, memory
- parameters: the notebooks' parameters, checked before any work
- messages: what the helpers say, in the reader's language

Importing the package, or machine and messages, does not import TensorFlow.
"""
