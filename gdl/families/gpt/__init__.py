"""GPT (chapter 9): a small causal transformer over words, with the attention maps of each head; see model.py."""

from pydantic import Field, model_validator

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    seq_len: int = Field(80, ge=2)  # the context: the book's MAX_LEN for wine reviews
    embedding_dim: int = Field(256, ge=1)
    heads: int = Field(2, ge=1)
    key_dim: int = Field(256, ge=1)
    feed_forward_dim: int = Field(256, ge=1)
    blocks: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    temperatures: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.2], min_length=1)
    prompts: list[str] = Field(default_factory=lambda: ["the", "a class", "if the"], min_length=1)
    sample_length: int = Field(40, ge=1)
    # The report draws each head's attention over these prompts' continuations.
    attention_prompts: list[str] = Field(default_factory=lambda: ["the return value of a function is"], min_length=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _room_to_generate(self):
        if self.seq_len < 4:
            raise ValueError("seq_len must be >= 4 (generation re-reads the last half of the context)")
        return self


FAMILY = Family(
    name="gpt",
    title="GPT (causal transformer)",
    Config=Config,
    samples="tokens",
    # Sized for ~88,000 training tokens on 2 cores: half the book's widths, windows of 40, batches of 16.
    # Measured: test NLL 3.86 nats/token after 6 epochs (bigram baseline 4.06); the validation loss is
    # lowest at epoch 6 and rises after it (over-fitting: the training loss keeps falling).
    defaults={"text": {"seq_len": 40, "batch_size": 16, "embedding_dim": 128, "key_dim": 64,
                       "feed_forward_dim": 256, "dropout": 0.2, "epochs": 6}},
    profiles={
        "smoke": {"epochs": 1, "embedding_dim": 16, "key_dim": 8, "feed_forward_dim": 16, "seq_len": 16,
                  "sample_length": 5, "temperatures": [1.0], "prompts": ["the"]},
        # The book's wine-review GPT: embedding 256, 2 heads of key_dim 256, feed-forward 256, one block,
        # MAX_LEN 80, 5 epochs, batch 32.
        "book": {"seq_len": 80, "embedding_dim": 256, "heads": 2, "key_dim": 256, "feed_forward_dim": 256,
                 "blocks": 1, "epochs": 5, "batch_size": 32, "temperatures": [1.0, 0.5]},
    },
)
