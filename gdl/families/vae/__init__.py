"""Variational autoencoder (chapter 3): the book's convolutional VAE; see model.py."""

from typing import Literal

from pydantic import Field, model_validator

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    latent_dim: int = Field(2, ge=1)
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    # Weight of the reconstruction term (summed over pixels, in nats). 1.0 is the true ELBO; the book's
    # "beta 500 x mean BCE" corresponds to about 500 / (32*32) = 0.49.
    beta: float = Field(1.0, gt=0.0)
    iw_samples: int = Field(64, ge=1)  # importance samples for the test-set IWAE bound
    # The decoder's distribution of a pixel's channel: a discretised logistic over the 256 levels, or a
    # categorical (softmax over the 256 levels: many times the decoder's last-layer cost, for exact levels).
    likelihood: Literal["logistic", "categorical"] = "logistic"
    # Categorical only: the share of each image's pixels (drawn at random every step) whose log-probability
    # enters a training step, rescaled so the loss stays an unbiased estimate of the negative ELBO; the
    # 256-way logits are the bulk of a step's cost. Validation and evaluation use every pixel.
    pixel_share: float = Field(1.0, gt=0.0, le=1.0)
    # Latent arithmetic (the book's CelebA section), on datasets with categorical attributes: the vector from
    # the mean code of images without `attribute_value` to the mean code of images with it.
    attribute: str | None = None
    attribute_value: str | None = None
    # digits: 40 epochs, FID 15.1 +- 2.9 and 5.281 +- 0.004 bits/dim over seeds 42, 1, 2 (60 epochs, seed 42:
    # 14.0 and 5.255, in half as long again)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(100, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _share_needs_categorical(self):
        if self.pixel_share < 1.0 and self.likelihood != "categorical":
            raise ValueError(f"pixel_share {self.pixel_share} needs `likelihood: categorical`: a logistic decoder's "
                             "outputs are cheap, it scores every pixel")
        return self


FAMILY = Family(
    name="vae",
    title="Variational autoencoder",
    Config=Config,
    samples="images",
    likelihood=True,
    defaults={
        # The book's CelebA VAE, scaled to 32x32 shapes: a richer latent for colour, shape, size, position.
        # (Tried: half the widths, batches of 32, rate 1e-3, 24 epochs: twice as fast, but FID 77 and 4.04
        # bits/dim against 54 and 3.68.)
        # The attribute: background, not colour. This VAE does not put the shape's colour into its codes:
        # colour read back from its reconstructions is at chance (0.15; a linear probe on the codes: 0.3),
        # so a "red" vector moved nothing (red share 0.0 -> 0.0). Tried, all without colour after 30 epochs:
        # rates 5e-4 and 2e-3, batches 32 and 100, KL warm-up, a fixed decoder scale for the first 10-30
        # epochs; a squared-error warm-up put colour in (0.68 after 15 epochs, one seed of two) and the
        # discretised logistic took it out again within 5 epochs. The background it codes exactly.
        # A categorical decoder: one logistic per pixel gave 3.68 bits/dim, worse than the per-pixel
        # histogram's 2.67, on these noise-free images in a handful of exact colours (see model.py).
        # Its epochs cost about 3x a logistic's (the 256-way softmax per pixel and channel), so each step
        # scores a random quarter of the pixels (pixel_share): after 4 epochs 2.40 bits/dim against all
        # pixels' 2.38, in half the time. The loss falls steeply at epochs 6-8 (the codes take in shape and
        # position); 10 epochs give 0.570 +- 0.028 (seeds 42, 1, 2) against 15 epochs on every pixel's 0.483
        # (seed 42), training in 155 s against 573 s.
        # (A mixture of 5 discretised logistics, 15x fewer outputs, learnt far slower: 4.8 bits/dim after 4
        # epochs, its sharp components hard to move onto the levels.)
        "shapes": {"latent_dim": 16, "epochs": 10, "filters": [32, 64, 128], "likelihood": "categorical",
                   "pixel_share": 0.25, "iw_samples": 16, "attribute": "background", "attribute_value": "white"},
    },
    profiles={
        "smoke": {"epochs": 2, "filters": [8, 16], "iw_samples": 4},
        "book": {"beta": 500 / (32 * 32), "epochs": 5, "learning_rate": 5e-4, "batch_size": 100},
    },
)
