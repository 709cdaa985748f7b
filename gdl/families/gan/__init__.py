"""Generative adversarial networks (chapter 4): DCGAN, WGAN-GP and the conditional WGAN-GP; see model.py.

One family, three instances in dvc.yaml (`dcgan`, `wgan_gp`, `cgan`): they share the generator and the
critic and differ in their objective and in whether both networks see a class label.
"""

from typing import Literal

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    # "dcgan": the discriminator is a classifier (binary cross-entropy, smoothed labels); "wgan_gp": the critic
    # estimates the Wasserstein distance, kept 1-Lipschitz by a gradient penalty (Gulrajani et al. 2017).
    objective: Literal["dcgan", "wgan_gp"] = "dcgan"
    conditional: bool = False  # CGAN: generator and critic see a class (one-hot)
    # The class a CGAN is conditioned on: a categorical attribute of the dataset (shapes: colour, like the
    # book's hair colour on CelebA), or None for the dataset's own labels (shapes: the shape).
    condition: str | None = None
    # How the critic sees the class: "channels" (the book: one-hot planes beside the image's channels) or
    # "projection" (Miyato & Koyama 2018: the score gains <embedding(class), critic features>, so the critic
    # must judge image and class together).
    critic_conditioning: Literal["channels", "projection"] = "channels"
    # AC-GAN (Odena et al. 2017): the critic also classifies images into the conditioning classes, trained on
    # real images, and the generator is rewarded when its fakes are classified as requested; this weight
    # scales both cross-entropies (0: no classifier head, the book's CGAN).
    classifier_weight: float = Field(0.0, ge=0.0)
    latent_dim: int = Field(64, ge=1)
    # Generator widths from its smallest feature map up: a dense layer to (H/2^k, W/2^k, widths[0]), then a
    # stride-2 transposed conv per further width and one to the image's channels (k = len(widths)).
    generator_filters: list[int] = Field(default_factory=lambda: [128, 64, 32], min_length=1)
    critic_filters: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)  # stride-2 convs
    dropout: float = Field(0.3, ge=0.0, lt=1.0)  # in the critic, as in the book
    critic_steps: int = Field(1, ge=1)  # critic updates per generator update (the book's WGAN-GP: 3)
    gp_weight: float = Field(10.0, ge=0.0)  # gradient-penalty weight (wgan_gp only)
    label_noise: float = Field(0.1, ge=0.0, lt=0.5)  # label smoothing of the DCGAN discriminator's targets
    beta_1: float = Field(0.5, ge=0.0, lt=1.0)
    beta_2: float = Field(0.999, ge=0.0, lt=1.0)
    critic_learning_rate: float | None = Field(None, gt=0.0, le=1.0)  # None: learning_rate
    # Samples come from an exponential moving average of the generator's weights (Yazici et al. 2019): a GAN's
    # generator keeps circling the equilibrium, and its average sits closer to it (0: the raw generator).
    ema: float = Field(0.99, ge=0.0, lt=1.0)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)


# Small batches: with 4,800 training images, the generator's number of updates is what limits it on a CPU
# (batch 32: 150 generator steps per epoch), more than the images it sees.
# The rate: 5e-4 reached FID 12 in 6 epochs where the book's 2e-4 stalled at 32 (samples: blobs).
WGAN_GP = {"objective": "wgan_gp", "critic_steps": 3, "beta_2": 0.9, "batch_size": 32, "learning_rate": 5e-4,
           "epochs": 6}

FAMILY = Family(
    name="gan",
    title="Generative adversarial network",
    Config=Config,
    samples="images",
    defaults={
        # batch 32 and rate 5e-4 (the book: 128 and 2e-4): FID 14 after 10 epochs in 71 s, where 128/2e-4
        # gave FID 28 after 16 epochs in 150 s, its samples still shapeless blobs. 8 epochs (FID 19.8; 12
        # epochs: 11.2 in 93 s) keep chapters 2-6 inside their 15 minutes.
        "dcgan": {"objective": "dcgan", "batch_size": 32, "learning_rate": 5e-4, "epochs": 8},
        # 5 epochs: FID 11.17, the same as 6 epochs' 11.24.
        "wgan_gp": {**WGAN_GP, "epochs": 5},
        # Projection: conditional accuracy 0.71 and FID 10.1 after 6 epochs, against 0.64 and 11.8 with the
        # book's label planes (which the book profile keeps). The colours the ruler confused were neighbours
        # (red/yellow/magenta, blue/cyan/green); an auxiliary classifier of weight 3 then raised the accuracy
        # to 0.93 at FID 13 (weight 1: 0.90 at FID 12; 8 epochs, weight 3: 0.95 at FID 14).
        "cgan": {**WGAN_GP, "conditional": True, "condition": "colour", "critic_conditioning": "projection",
                 "classifier_weight": 3.0},
    },
    profiles={
        "smoke": {"epochs": 2, "generator_filters": [16, 8], "critic_filters": [8, 16], "critic_steps": 1,
                  "latent_dim": 8},
        # The book's 64x64 networks (DCGAN: D 2.77M, G 3.58M parameters); with 32x32 data one width fewer.
        "book": {"generator_filters": [512, 256, 128, 64], "critic_filters": [64, 128, 256, 512],
                 "latent_dim": 100, "epochs": 300, "critic_conditioning": "channels", "classifier_weight": 0.0},
    },
)
