"""Music transformer (chapter 11): a causal transformer over two aligned token streams, the pitch (or rest)
and the duration of each event of a chorale voice, predicting both of the next event; see model.py."""

from pydantic import Field

from gdl.families import Family
from gdl.params import Training


class Config(Training):
    seq_len: int = Field(50, ge=2)  # events per training window (the book's SEQ_LEN)
    # Each stream has its own embedding; the two are concatenated, so the model width is their sum (the book:
    # EMBEDDING_DIM 256, half for each). The notes get the larger share here: ~55 pitch tokens against ~40
    # durations, most of them rare, and the note stream is the harder one to predict.
    note_embedding_dim: int = Field(96, ge=1)
    duration_embedding_dim: int = Field(32, ge=1)
    heads: int = Field(4, ge=1)
    key_dim: int = Field(32, ge=1)
    feed_forward_dim: int = Field(256, ge=1)
    blocks: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    # Generation: `num_pieces` pieces of `sample_length` events each after the START event, whatever number
    # of samples the stage asks for (each event costs a forward pass over the last seq_len events).
    sample_length: int = Field(128, ge=1)
    num_pieces: int = Field(8, ge=1)
    sample_temperature: float = Field(1.0, gt=0.0)
    epochs: int = Field(35, ge=1)  # the validation loss stops falling after ~32 (measured on 2 cores: ~80 s)
    # Small batches: ~2,200 training windows, so the book's 256 gives 9 updates per epoch, too few on a CPU.
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


FAMILY = Family(
    name="music_transformer",
    title="Music transformer",
    Config=Config,
    samples="tokens",
    defaults={"chorales": {}},
    profiles={
        "smoke": {"epochs": 1, "seq_len": 16, "note_embedding_dim": 8, "duration_embedding_dim": 8, "heads": 2,
                  "key_dim": 8, "feed_forward_dim": 16, "sample_length": 8, "num_pieces": 2, "batch_size": 32},
        # The book's notebook (Bach cello suites): SEQ_LEN 50, EMBEDDING_DIM 256 (128 + 128), 5 heads of
        # KEY_DIM 256, FEED_FORWARD_DIM 256, one block, DROPOUT_RATE 0.3, Adam's default rate, BATCH_SIZE 256,
        # EPOCHS 5000 (trained until stopped), generation at temperature 0.5.
        "book": {"seq_len": 50, "note_embedding_dim": 128, "duration_embedding_dim": 128, "heads": 5,
                 "key_dim": 256, "feed_forward_dim": 256, "blocks": 1, "dropout": 0.3, "epochs": 5000,
                 "batch_size": 256, "learning_rate": 1e-3, "sample_temperature": 0.5},
    },
)
