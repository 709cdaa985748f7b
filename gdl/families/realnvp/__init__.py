"""RealNVP normalizing flow (chapter 6) on two moons; see model.py."""

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    coupling_layers: int = Field(6, ge=1)
    hidden_units: int = Field(64, ge=1)
    hidden_layers: int = Field(2, ge=1)
    l2: float = Field(1e-4, ge=0.0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="realnvp",
    title="RealNVP normalizing flow",
    Config=Config,
    samples="points",
    likelihood=True,
    profiles={
        "smoke": {"epochs": 2, "coupling_layers": 2, "hidden_units": 16, "hidden_layers": 1},
        "book": {"hidden_units": 256, "hidden_layers": 4, "l2": 0.01, "epochs": 300, "learning_rate": 1e-4,
                 "batch_size": 256},
    },
)
