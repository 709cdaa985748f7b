"""Energy-based model (chapter 7): a conv net scores images, Langevin dynamics samples from it; see model.py."""

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    # The score network (energy = -score): stride-2 swish convs, then a swish dense layer and one output.
    filters: list[int] = Field(default_factory=lambda: [16, 32, 64, 64], min_length=1)
    kernel_sizes: list[int] = Field(default_factory=lambda: [5, 3, 3, 3], min_length=1)
    dense_units: int = Field(64, ge=1)
    # Langevin dynamics for the training negatives: each step adds N(0, noise^2) to the images, then moves
    # them step_size x the score's gradient, clipped to +-gradient_clip per pixel (the book: 60, 10, 0.005,
    # 0.03). Images stay in [-1, 1].
    langevin_steps: int = Field(60, ge=1)
    step_size: float = Field(10.0, gt=0.0)
    noise: float = Field(0.005, ge=0.0)
    gradient_clip: float = Field(0.03, gt=0.0)
    # Negatives start from a replay buffer of earlier negatives (Du & Mordatch 2019), a share of them from
    # fresh uniform noise; the buffer is a variable of the model, so a resumed run keeps it.
    buffer_size: int = Field(8192, ge=1)
    fresh_fraction: float = Field(0.05, ge=0.0, le=1.0)
    real_noise: float = Field(0.005, ge=0.0)  # Gaussian noise on the real images (the book's)
    alpha: float = Field(0.1, ge=0.0)  # weight of the scores' squared magnitude: keeps them near 0
    # Sampling from scratch: Langevin chains from uniform noise, this many steps (the book: 1,000).
    sample_steps: int = Field(1000, ge=1)
    beta_1: float = Field(0.0, ge=0.0, lt=1.0)  # Adam's momentum off, as the book (the target moves)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-4, gt=0.0, le=1.0)


FAMILY = Family(
    name="ebm",
    title="Energy-based model",
    Config=Config,
    samples="images",
    defaults={
        # 1,258 digits on 2 cores, where the book has 60,000 MNIST images for 60 epochs: more, smaller steps
        # (batch 32, rate 5e-4) and half the Langevin steps per update. 14 epochs: FID 30 (8 epochs: 49),
        # ~130 s of training with the CPU shared; sampling 1,000 chains of 300 steps ~50 s.
        "digits": {"epochs": 14, "batch_size": 32, "learning_rate": 5e-4, "langevin_steps": 30, "sample_steps": 300},
    },
    profiles={
        "smoke": {"epochs": 1, "filters": [4, 8], "kernel_sizes": [3, 3], "dense_units": 8, "langevin_steps": 5,
                  "buffer_size": 64, "sample_steps": 10},
        # The book's MNIST run: 60 epochs of batch 128, Langevin 60 steps, buffer 8,192, 1,000 sampling steps.
        "book": {"epochs": 60, "batch_size": 128, "langevin_steps": 60, "buffer_size": 8192, "sample_steps": 1000},
    },
)
