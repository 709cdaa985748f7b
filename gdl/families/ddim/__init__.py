"""Diffusion (chapter 8): the book's DDIM, a U-Net that predicts noise, with classifier-free guidance; see model.py."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gdl.families import Family
from gdl.params import Training

Steps = Annotated[int, Field(ge=1, le=1000)]
Eta = Annotated[float, Field(ge=0.0, le=1.0)]
Scale = Annotated[float, Field(ge=0.0, le=20.0)]


class Config(Training):
    # The U-Net: one resolution per width; the last width is the bottleneck's (no pooling after it).
    widths: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [16, 32, 64], min_length=2)
    block_depth: int = Field(2, ge=1)  # residual blocks per resolution, on the way down and on the way up
    # Add the (noise level + label) embedding inside every residual block too, not only at the input (the
    # book): with the book's input-only conditioning the label was nearly ignored on digits (conditional
    # accuracy 0.08 at every guidance scale with Keras's default label-embedding init, 0.39 at w = 4 with
    # unit-variance codes), as the noise loss rewards knowing the class only at high noise levels.
    block_conditioning: bool = True
    embedding_dim: int = Field(32, ge=2, multiple_of=2)  # sinusoidal noise-variance embedding (sin + cos)
    # The offset cosine schedule (the book's 0.02 / 0.95): at diffusion time t the image is
    # cos(a) x + sin(a) noise, a going linearly from acos(max_signal_rate) to acos(min_signal_rate).
    min_signal_rate: float = Field(0.02, gt=0.0, lt=1.0)
    max_signal_rate: float = Field(0.95, gt=0.0, lt=1.0)
    loss: Literal["mae", "mse"] = "mae"  # on the predicted noise (the book: MAE)
    # standardise: the training set's pixel mean/std (the book's Normalization layer); scale: [-1, 1].
    normalisation: Literal["standardise", "scale"] = "standardise"
    ema: float = Field(0.999, ge=0.0, lt=1.0)  # the sampling network is this running average of the weights
    weight_decay: float = Field(1e-4, ge=0.0)  # AdamW, as the book
    # Classifier-free guidance (Ho & Salimans 2022): the label is swapped for a "null" label this share of
    # the time, so one network learns both the conditional and the unconditional noise prediction.
    label_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    sample_steps: Steps = 20  # DDIM steps of `sample` (eta 0, null label) and of the guidance sweep
    # DDIM eta of the guided samples (the guidance sweep and the report's grids). On digits (default run,
    # 250 samples, 20 steps, w = 4) eta 1 (DDPM's fresh noise each step) raised the conditional accuracy from
    # 0.80 to 0.92 (FID 8.9 -> 8.1); 50 steps at eta 0 only to 0.84 (FID 8.2), w = 8 at 50 steps to 0.84
    # (FID 14.7). Deterministic DDIM keeps whatever class the initial noise leans to; fresh noise lets the
    # guided prediction re-steer it (most misses at eta 0: 3 -> 5 and 7 -> 5).
    guidance_eta: Eta = 1.0
    # extra_metrics: FID/KID per (eta, steps), all from the same initial noise, sweep_samples images each.
    sweep_steps: list[Steps] = Field(default_factory=lambda: [5, 10, 20, 50], min_length=1)
    sweep_etas: list[Eta] = Field(default_factory=lambda: [0.0, 1.0], min_length=1)
    sweep_samples: int = Field(250, ge=10)
    # Guidance scale w (0: unconditional, 1: plain conditional, > 1: pushed further from the unconditional).
    guidance_scales: list[Scale] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 4.0, 8.0], min_length=1)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _rates(self):
        if self.min_signal_rate >= self.max_signal_rate:
            raise ValueError(f"min_signal_rate ({self.min_signal_rate}) must be below max_signal_rate "
                             f"({self.max_signal_rate})")
        return self


FAMILY = Family(
    name="ddim",
    title="Denoising diffusion implicit model",
    Config=Config,
    samples="images",
    defaults={
        # digits: 1,258 images, 40 updates per epoch at batch 32. An EMA of 0.999 (the book's, over ~5,000
        # updates on flowers) would still be mostly the initial network after 1,200 updates: 0.99.
        "digits": {"batch_size": 32, "ema": 0.99},
    },
    profiles={
        "smoke": {"epochs": 1, "widths": [4, 8], "block_depth": 1, "embedding_dim": 8, "sample_steps": 3,
                  "sweep_steps": [2, 3], "sweep_samples": 16, "guidance_scales": [0.0, 2.0]},
        # The book's flowers U-Net (widths 32/64/96/128, 2 blocks, EMA 0.999, batch 64, 50 epochs), on 32x32.
        "book": {"widths": [32, 64, 96, 128], "block_depth": 2, "epochs": 50, "ema": 0.999, "batch_size": 64,
                 "learning_rate": 1e-3, "weight_decay": 1e-4, "loss": "mae", "normalisation": "standardise",
                 "block_conditioning": False},
    },
)
