"""Feature extractors ("backbones") for FID/KID.

Two backbones, and their FIDs are never compared with each other (DESIGN.md section 5):

* ``inception_v3``: Keras' ImageNet InceptionV3 (2048-d average-pooled features, 299x299
  inputs). Needs the notop weights file, fetched by :mod:`gdl.download` with a pinned
  hash; nothing here downloads anything.
* ``domain``: a small CNN classifier trained by the pipeline on the dataset itself. It is
  the default on CPU-only/offline machines; its penultimate "features" layer plays the
  role of Inception's pool3. The same classifier also scores conditional models (does a
  sample get the label it was asked for?).

The metrics themselves live in :mod:`gdl.metrics`, which stays TensorFlow-free.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np

__all__ = [
    "INCEPTION_V3_NOTOP_FILENAME",
    "INCEPTION_V3_NOTOP_URL",
    "INCEPTION_V3_NOTOP_MD5",
    "INCEPTION_V3_NOTOP_SHA256",
    "INCEPTION_INPUT_SIZE",
    "FEATURES_LAYER",
    "build_domain_classifier",
    "feature_model",
    "build_inception_v3",
    "inception_features",
    "domain_features",
    "domain_labels",
    "load_domain_backbone",
    "load_domain_classifier",
    "Ruler",
]

# ----------------------------------------------------------------------------------------
# InceptionV3 weights. URL and MD5 are copied from keras' own source
# (keras/src/applications/inception_v3.py, WEIGHTS_PATH_NO_TOP and the file_hash it passes
# to get_file; 32 hex digits, so keras' "auto" hasher treats it as MD5).

INCEPTION_V3_NOTOP_FILENAME = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_V3_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/"
    f"inception_v3/{INCEPTION_V3_NOTOP_FILENAME}"
)
INCEPTION_V3_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
# Keras publishes no SHA-256 for this file and it cannot be downloaded from this machine, so
# the SHA-256 that gdl.download requires must be pinned on the first authorised download
# (after checking the MD5 above). Deliberately None rather than a guessed value.
INCEPTION_V3_NOTOP_SHA256: str | None = None

INCEPTION_INPUT_SIZE = 299
FEATURES_LAYER = "features"


# ----------------------------------------------------------------------------------------
# Domain classifier


def _conv_block(x: keras.KerasTensor, filters: int, strides: int, name: str) -> keras.KerasTensor:
    """Conv (no bias: BN supplies it) -> BN -> ReLU."""
    x = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    # momentum 0.9 rather than Keras' 0.99: the classifier trains for only a few hundred
    # steps, and with 0.99 the moving statistics used at inference would still be mostly
    # their initial values.
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build_domain_classifier(
    input_shape: tuple[int, int, int],
    num_classes: int,
    feature_dim: int = 64,
    *,
    dropout: float = 0.3,
    learning_rate: float = 1e-3,
    feature_activation: str = "relu",
) -> keras.Model:
    """Small CNN classifier whose ``"features"`` layer is the domain FID embedding.

    conv32 -> conv64/2 -> conv128/2 -> conv128/2 -> global average pool ->
    Dense(feature_dim, relu, name="features") -> dropout -> softmax. The fourth block makes
    the receptive field span a whole 32x32 image before pooling; with three blocks (~15 px)
    each position only sees part of a digit and training needed twice the epochs. Returned compiled (Adam, sparse categorical
    cross-entropy, accuracy) so a stage can call ``fit`` directly. Small on purpose: it
    must train in well under a minute on 2 CPU cores, and a low-dimensional embedding keeps
    the FID covariance well estimated from a few thousand samples.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_block(inputs, 32, strides=1, name="block1")
    x = _conv_block(x, 64, strides=2, name="block2")
    x = _conv_block(x, 128, strides=2, name="block3")
    x = _conv_block(x, 128, strides=2, name="block4")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    features = keras.layers.Dense(feature_dim, activation=feature_activation, name=FEATURES_LAYER)(x)
    x = keras.layers.Dropout(dropout, name="dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)

    model = keras.Model(inputs, outputs, name="domain_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def feature_model(classifier: keras.Model) -> keras.Model:
    """Model sharing ``classifier``'s weights that outputs its ``"features"`` layer."""
    return keras.Model(
        classifier.inputs,
        classifier.get_layer(FEATURES_LAYER).output,
        name=f"{classifier.name}_features",
    )


def domain_features(
    feature_model: keras.Model, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Embed ``images`` with a domain feature model; ``(n, feature_dim)`` float64."""
    x = _as_nhwc_float32(images)
    feats = feature_model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(feats, dtype=np.float64)


def domain_labels(data: dict, split: str, attributes: list[str]) -> tuple[np.ndarray, int]:
    """The classes a domain backbone learns on `split`: (labels, number of classes).

    With no attributes, the dataset's own labels (``<split>_y``). Otherwise the joint value of the named
    columns of ``<split>_attributes`` (each with a ``<name>_names`` array giving its values): a backbone
    trained on shape x colour sees both, so FID is not blind to a model that gets colours wrong.
    """
    if not attributes:
        labels = data[f"{split}_y"].astype(np.int64)
        return labels, int(max(data["train_y"].max(), labels.max())) + 1
    columns = [str(c) for c in data["attribute_names"]]
    labels, classes = np.zeros(len(data[f"{split}_x"]), np.int64), 1
    for name in attributes:
        if name not in columns or f"{name}_names" not in data:
            raise ValueError(f"attribute {name!r} is not a categorical attribute of this dataset "
                             f"(has {columns})")
        cardinality = len(data[f"{name}_names"])
        labels = labels * cardinality + data[f"{split}_attributes"][:, columns.index(name)].astype(np.int64)
        classes *= cardinality
    return labels, classes


def load_domain_classifier(weights: str | Path, data: dict, cfg) -> keras.Model:
    """The trained domain classifier in `weights` (cfg: params.feature_extractor.<dataset>)."""
    _, num_classes = domain_labels(data, "train", cfg.attributes)
    classifier = build_domain_classifier(data["train_x"].shape[1:], num_classes, cfg.feature_dim,
                                         feature_activation=cfg.feature_activation)
    classifier.load_weights(str(weights))
    return classifier


def load_domain_backbone(weights: str | Path, data: dict, cfg) -> keras.Model:
    """The trained domain classifier in `weights`, as a feature model: images -> ``"features"`` layer."""
    return feature_model(load_domain_classifier(weights, data, cfg))


class Ruler:
    """A dataset's frozen domain classifier, as evaluation uses it: features for FID/KID, and predictions of
    the dataset's own labels (``<split>_y``) or of one categorical attribute, for conditional models."""

    def __init__(self, weights: str | Path, data: dict, cfg):
        self.classifier = load_domain_classifier(weights, data, cfg)
        self.features_model = feature_model(self.classifier)
        self.attributes = list(cfg.attributes)
        self.data = data

    def features(self, images: np.ndarray) -> np.ndarray:
        return domain_features(self.features_model, images)

    def predict_classes(self, images: np.ndarray) -> np.ndarray:
        """The classifier's own classes (joint attribute values where it learnt several)."""
        probs = self.classifier.predict(_as_nhwc_float32(images), batch_size=256, verbose=0)
        return np.argmax(probs, axis=1)

    def predict_attribute(self, images: np.ndarray, attribute: str) -> np.ndarray:
        """Predicted values (indices into ``<attribute>_names``) of one attribute the classifier learnt."""
        if attribute not in self.attributes:
            raise ValueError(f"the ruler learnt {self.attributes or 'the labels'}, not the attribute {attribute!r}")
        joint = self.predict_classes(images)
        cards = [len(self.data[f"{a}_names"]) for a in self.attributes]
        position = self.attributes.index(attribute)
        return (joint // int(np.prod(cards[position + 1:], dtype=np.int64))) % cards[position]

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Predicted dataset labels (``<split>_y``): the classifier's classes, or the learnt attribute that
        the labels are (on shapes, ``y`` is the shape)."""
        if not self.attributes:
            return self.predict_classes(images)
        columns = [str(c) for c in self.data["attribute_names"]]
        for a in self.attributes:
            if np.array_equal(self.data["train_attributes"][:, columns.index(a)], self.data["train_y"]):
                return self.predict_attribute(images, a)
        raise ValueError(f"the dataset's labels are none of the ruler's attributes {self.attributes}")


# ----------------------------------------------------------------------------------------
# InceptionV3


def _md5_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def build_inception_v3(
    weights: str | Path | None, *, expected_md5: str | None = INCEPTION_V3_NOTOP_MD5
) -> keras.Model:
    """InceptionV3 without its classifier head: ``(299, 299, 3)`` -> 2048-d pooled features.

    ``weights`` is the path to the notop ``.h5`` file (already verified by the download
    helper) or ``None`` for random initialisation, which is only good for plumbing tests.
    The file is additionally checked against keras' own MD5 so that every "inception_v3"
    FID in the metrics files comes from the same network. Note this is the Keras
    application, not the TF-slim graph of the original FID code, so the numbers are not
    directly comparable with published FIDs, only with each other.
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"InceptionV3 weights not found: {path}")
        if expected_md5 is not None and (actual := _md5_file(path)) != expected_md5:
            raise ValueError(f"{path}: md5 {actual} != expected {expected_md5}")
        weights = str(path)
    return keras.applications.InceptionV3(
        include_top=False,
        weights=weights,
        input_shape=(INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE, 3),
        pooling="avg",
    )


def _as_nhwc_float32(images: np.ndarray) -> np.ndarray:
    """Accept ``(n, H, W)`` or ``(n, H, W, C)`` images and return float32 NHWC."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images must be (n, H, W[, C]), got shape {x.shape}")
    return x


def _inception_inputs(batch: np.ndarray) -> np.ndarray:
    """[0, 1] images (1 or 3 channels) -> 299x299x3 inputs in Inception's [-1, 1] range."""
    if batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
    elif batch.shape[-1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {batch.shape[-1]}")
    resized = keras.ops.image.resize(
        batch, (INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE), interpolation="bilinear"
    )
    # preprocess_input expects 0..255 ("tf" mode maps it to [-1, 1]); it may work in place,
    # which is fine on this fresh array.
    scaled = np.asarray(keras.ops.convert_to_numpy(resized), dtype=np.float32) * 255.0
    return keras.applications.inception_v3.preprocess_input(scaled)


def inception_features(
    model: keras.Model, images: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """2048-d InceptionV3 features of ``[0, 1]`` images, ``(n, 2048)`` float64.

    Resizing happens batch by batch: the whole set at 299x299x3 float32 would be ~1 MiB
    per image. ``predict_on_batch`` reuses one compiled predict function across batches.
    """
    x = _as_nhwc_float32(images)
    chunks = []
    for start in range(0, x.shape[0], batch_size):
        batch = _inception_inputs(x[start : start + batch_size])
        chunks.append(np.asarray(model.predict_on_batch(batch), dtype=np.float64))
    if not chunks:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float64)
    return np.concatenate(chunks, axis=0)
