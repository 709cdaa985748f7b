"""Image classifiers (chapter 2): a multilayer perceptron and a convolutional network, side by side.

Chapter 2's point: an MLP flattens the image first, so every pixel gets its own weights and a shape seen at
one place teaches it nothing about the same shape elsewhere; a CNN slides the same small filters over the
whole image, so what it learns about an edge or a corner holds everywhere. On the `shapes` dataset, where
one shape of random size, colour and position lies on a plain background, that is the whole difference.

* ``mlp``: Flatten -> Dense(200, relu) -> Dense(150, relu) -> Dense(classes, softmax).
* ``cnn``: 3x3 convs, each followed by BatchNorm and LeakyReLU -> pooling -> Dense(128) + BatchNorm +
  LeakyReLU -> Dropout(0.5) -> softmax. The book's: 32, 32, 64, 64 filters with strides 1, 2, 1, 2, and
  Flatten as the pooling. The default profile halves the widths and takes the maximum of each filter over
  the image instead of flattening (`pooling`): the book's flattened head learns where the training shapes
  lay, and scores 85% on the test split where max pooling scores 99%, with a quarter of the multiply-adds.

Both train with Adam on the sparse categorical cross-entropy, as in the book. The book's CIFAR-10 has ten
classes; the output layer here has as many units as the dataset has labels.

The family interface (gdl/families/__init__.py): build, train_arrays, sample_outputs. There is no `sample`:
a classifier generates nothing. Its "samples" are its class probabilities on the test split, which needs
the data, so `sample_outputs` is the one way to get them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

PREDICT_BATCH = 512


# ------------------------------------------------------------------ the networks -----------------------
def build_mlp(image_shape, num_classes: int, cfg) -> keras.Model:
    x_in = keras.Input(image_shape, name="image")
    x = layers.Flatten()(x_in)  # the image becomes a vector: where a pixel is, is forgotten
    for units in cfg.hidden_units:
        x = layers.Dense(units, activation="relu")(x)
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(x_in, probs, name="mlp")


def build_cnn(image_shape, num_classes: int, cfg) -> keras.Model:
    x_in = keras.Input(image_shape, name="image")
    x = x_in
    # BatchNorm's moving statistics (what it normalises with at inference) with momentum 0.9, not Keras's
    # 0.99, which after 75 steps still weighs its initial values by half: the validation accuracy after the
    # first epoch was chance (0.25) and trailed for five epochs more; with 0.9 it is 0.64. The weights are the
    # same either way (training normalises with each batch's own statistics).
    for f, s in zip(cfg.filters, cfg.strides):
        # The same 3x3 filters at every position; a stride of 2 halves the resolution.
        x = layers.Conv2D(f, 3, strides=s, padding="same")(x)
        x = layers.LeakyReLU()(layers.BatchNormalization(momentum=0.9)(x))
    x = {"flatten": layers.Flatten, "max": layers.GlobalMaxPooling2D, "average": layers.GlobalAveragePooling2D}[
        cfg.pooling]()(x)
    x = layers.LeakyReLU()(layers.BatchNormalization(momentum=0.9)(layers.Dense(cfg.dense_units)(x)))
    x = layers.Dropout(cfg.dropout)(x)  # the book's guard against a dense head that memorises its inputs
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(x_in, probs, name="cnn")


# ------------------------------------------------------------------ the family interface ---------------
def num_classes(data: dict) -> int:
    return int(data["train_y"].max()) + 1


def build(cfg, data: dict, seed: int) -> keras.Model:
    image_shape = tuple(data["train_x"].shape[1:])
    make = build_mlp if cfg.architecture == "mlp" else build_cnn
    model = make(image_shape, num_classes(data), cfg)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model(data["train_x"][:1])  # create the weights now, so a checkpoint can be restored into them
    return model


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data) for `fit`: images and their labels, validated on the validation split."""
    return data["train_x"], data["train_y"].astype(np.int32), (data["val_x"], data["val_y"].astype(np.int32))


def predict_proba(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """(n, classes) class probabilities, float32; inference mode (BatchNorm's moving statistics, no dropout)."""
    return np.asarray(model.predict(images, verbose=0, batch_size=PREDICT_BATCH), np.float32)


def sample_outputs(model: keras.Model, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """The probabilities on the whole test split, in its order (evaluate and the report pair them with
    `test_y` and `test_x`); `n` and `seed` do not apply: a classifier is scored on every test image, and
    its predictions are deterministic."""
    return {"samples": predict_proba(model, data["test_x"])}
