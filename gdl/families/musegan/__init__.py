"""MuseGAN (chapter 11): four-voice, two-bar piano rolls from chords, style, melody and groove noises; see model.py."""

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    z_dim: int = Field(32, ge=1)  # the size of each noise vector
    generator_width: int = Field(64, ge=1)  # filters of the bar generators' transposed convolutions
    critic_width: int = Field(64, ge=1)  # filters of the critic's 3-D convolutions
    critic_steps: int = Field(5, ge=1)  # critic updates per generator update
    gp_weight: float = Field(10.0, ge=0.0)
    beta_1: float = Field(0.5, ge=0.0, lt=1.0)
    beta_2: float = Field(0.9, ge=0.0, lt=1.0)
    # Samples come from a moving average of the generator's weights (as the image GANs' do).
    ema: float = Field(0.99, ge=0.0, lt=1.0)
    epochs: int = Field(6000, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="musegan",
    title="MuseGAN",
    Config=Config,
    samples="pianorolls",
    # Sized for 2 cores: ~80k parameters in all. Batches of 16 and 2 critic steps give the generator 138
    # updates per epoch, 16 epochs in about 3 minutes. Measured on the real piano rolls (seeds 42, 1, 2, and
    # 1,000 samples each), EB, UPC and QN all end closer to the data's than random notes' (metrics/musegan.json),
    # TD not. With the book's 3 critic steps and batch 32 the notes stayed fragmented (QN 0.13).
    defaults={"chorales": {"z_dim": 16, "generator_width": 32, "critic_width": 32, "critic_steps": 2,
                           "epochs": 16, "batch_size": 16, "learning_rate": 1e-3}},
    profiles={
        "smoke": {"epochs": 1, "z_dim": 4, "generator_width": 4, "critic_width": 4, "critic_steps": 1},
        # The book's notebook: Z_DIM 32, 5 critic steps, gradient penalty 10, Adam 1e-3 (0.5, 0.9), batch 64,
        # 6,000 epochs, with widths of 512-1024 in the bar generator and 128-512 in the critic.
        "book": {"z_dim": 32, "generator_width": 256, "critic_width": 128, "critic_steps": 5, "epochs": 6000,
                 "batch_size": 64, "learning_rate": 1e-3},
    },
)
