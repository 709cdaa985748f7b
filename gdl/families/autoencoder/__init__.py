"""Autoencoder (chapter 3): the book's plain convolutional autoencoder with a 2-D latent space; see model.py."""

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    latent_dim: int = Field(2, ge=1)
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)  # stride-2 convs
    epochs: int = Field(25, ge=1)
    batch_size: int = Field(100, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="autoencoder",
    title="Autoencoder",
    Config=Config,
    samples="images",
    likelihood=False,  # a deterministic decoder defines no distribution over images
    profiles={
        "smoke": {"epochs": 2, "filters": [8, 16]},
        # The book's notebook: Adam with Keras's default rate, batch 100, 3 epochs. Its epochs are of 60,000
        # Fashion-MNIST images; the book profile's digits are MNIST (~50,000 training images), so about as many
        # steps. (On the default profile's 1,258 digits, 3 epochs would be 39 steps: hence 25 at twice the rate.)
        "book": {"epochs": 3, "batch_size": 100, "learning_rate": 1e-3},
    },
)
