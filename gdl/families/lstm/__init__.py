"""Recurrent text generator (chapter 5): the book's LSTM (or a GRU), word by word; see model.py."""

from typing import Literal

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    cell: Literal["lstm", "gru"] = "lstm"
    layers: int = Field(1, ge=1)  # stacked recurrent layers
    embedding_dim: int = Field(100, ge=1)
    units: int = Field(128, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # between layers and before the output
    seq_len: int = Field(200, ge=2)  # tokens per training window (the book pads recipes to 200)
    # Samples in the report: a few continuations of each prompt at each temperature.
    temperatures: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.2], min_length=1)
    prompts: list[str] = Field(default_factory=lambda: ["the", "a class", "if the"], min_length=1)
    sample_length: int = Field(40, ge=1)
    epochs: int = Field(25, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="lstm",
    title="LSTM text generator",
    Config=Config,
    samples="tokens",
    # The pydoc topics have ~88,000 training tokens, a thousandth of the book's recipes: windows of 40 (not
    # 200) and batches of 16 give 140 steps per epoch instead of 28, and dropout 0.3 holds off over-fitting.
    # Measured on 2 cores: test NLL 3.89 nats/token after 16 epochs (bigram baseline 4.06); the book's
    # settings were still at 5.25 after 12 epochs.
    defaults={"text": {"seq_len": 40, "batch_size": 16, "learning_rate": 3e-3, "dropout": 0.3, "epochs": 16}},
    profiles={
        "smoke": {"epochs": 1, "embedding_dim": 8, "units": 8, "seq_len": 16, "sample_length": 5,
                  "temperatures": [1.0], "prompts": ["the"]},
        # The book's recipe model: Embedding(10,000, 100) -> LSTM(128) -> Dense(10,000), 25 epochs, batch 32.
        "book": {"cell": "lstm", "layers": 1, "embedding_dim": 100, "units": 128, "seq_len": 200, "epochs": 25,
                 "batch_size": 32, "temperatures": [1.0, 0.2]},
    },
)
