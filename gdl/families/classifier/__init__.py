"""Image classifiers (chapter 2): the book's multilayer perceptron and its convolutional network; see model.py.

One family, two instances in dvc.yaml (`mlp`, `cnn`): the same data, loss and optimiser, and one param,
`architecture`, that decides whether the network sees the pixels as a flat vector or as an image. Their
"samples" are their class probabilities on the test split, so evaluation scores accuracy, not FID.
"""

from typing import Literal

from pydantic import Field, model_validator

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    architecture: Literal["mlp", "cnn"] = "cnn"
    # mlp: Flatten -> Dense(units, relu) for each entry -> softmax.
    hidden_units: list[int] = Field(default_factory=lambda: [200, 150], min_length=1)
    # cnn: a 3x3 conv per entry of `filters`, with the stride of the same entry of `strides`, each followed by
    # BatchNorm + LeakyReLU; then `pooling` -> Dense(dense_units) + BatchNorm + LeakyReLU -> Dropout -> softmax.
    filters: list[int] = Field(default_factory=lambda: [16, 16, 32, 32], min_length=1)
    strides: list[Literal[1, 2]] = Field(default_factory=lambda: [1, 2, 1, 2], min_length=1)
    # How the last feature maps reach the dense head: "flatten" keeps every position's features apart (the
    # book); "max" keeps each filter's strongest response anywhere, "average" its mean over the positions.
    # With "max" where a shape lies no longer matters: on shapes 99% test accuracy against the book's 85%
    # (flatten: its 4096 x 128 head learns the training images' positions), at a quarter of the convs' cost.
    pooling: Literal["flatten", "max", "average"] = "max"
    dense_units: int = Field(128, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-4, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_stride_per_conv(self):
        if len(self.strides) != len(self.filters):
            raise ValueError(f"strides {self.strides} must have one entry per entry of filters {self.filters}")
        return self


FAMILY = Family(
    name="classifier",
    title="Image classifier",
    Config=Config,
    samples="labels",
    defaults={
        # The MLP gets twice the epochs (still about 10 s on 2 cores): its test accuracy creeps from 0.39 to
        # 0.43 and stops there; the gap to the CNN is the architecture, not the training time.
        "mlp": {"architecture": "mlp", "epochs": 20},
        "cnn": {"architecture": "cnn"},
    },
    profiles={
        "smoke": {"epochs": 1, "hidden_units": [16], "filters": [8, 8, 16, 16], "dense_units": 16},
        # The book's notebooks (on CIFAR-10 there; the output layer has as many units as the dataset has labels).
        "book": {"hidden_units": [200, 150], "filters": [32, 32, 64, 64], "strides": [1, 2, 1, 2],
                 "pooling": "flatten", "dense_units": 128, "dropout": 0.5, "epochs": 10, "batch_size": 32,
                 "learning_rate": 5e-4},
    },
)
