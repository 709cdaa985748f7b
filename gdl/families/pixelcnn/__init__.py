"""PixelCNN (chapter 5): an autoregressive image model built from masked convolutions; see model.py.

One family, two instances in dvc.yaml: `pixelcnn` (the book's: 16x16 images on 4 grey levels, a softmax
over the levels per pixel) and `pixelcnn_mixture` (PixelCNN++'s output: a mixture of discretised logistics
over the full 256 levels).
"""

from typing import Literal

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    # The model's own space: images block-averaged to image_size x image_size and quantised to `levels`
    # grey levels. Its bits/dim are measured there (the generic 32x32, 256-level figure does not apply).
    image_size: int = Field(16, ge=4, le=32)
    levels: int = Field(4, ge=2, le=256)
    # A pixel's distribution over the levels: a softmax (the book), or a mixture of `components` discretised
    # logistics (Salimans et al. 2017), which shares strength between neighbouring levels.
    output: Literal["categorical", "logistic_mixture"] = "categorical"
    components: int = Field(5, ge=1)
    filters: int = Field(64, ge=2)
    residual_blocks: int = Field(3, ge=0)  # each 1x1 -> 3x3 type-B masked -> 1x1, plus a skip
    head_layers: int = Field(2, ge=0)  # 1x1 type-B layers before the output layer
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="pixelcnn",
    title="PixelCNN",
    Config=Config,
    samples="images",
    likelihood=False,  # bits/dim in its own space, from extra_metrics
    defaults={
        "pixelcnn": {"epochs": 20},
        "pixelcnn_mixture": {"output": "logistic_mixture", "levels": 256, "components": 5, "epochs": 20},
    },
    profiles={
        "smoke": {"epochs": 1, "filters": 8, "residual_blocks": 1, "head_layers": 1, "image_size": 8},
        # The book's Fashion-MNIST notebook; its mixture section (PixelCNN++) on the full 256 levels at 32x32.
        "book": {"filters": 128, "residual_blocks": 5, "head_layers": 2, "batch_size": 128, "epochs": 150,
                 "learning_rate": 5e-4},
    },
)
