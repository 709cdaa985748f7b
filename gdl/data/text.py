"""Text: the help topics shipped with CPython (``pydoc_data.topics.topics``), real English prose; or, with
``data.text.source``, the book's recipes (chapter 5) or wine reviews (chapter 9), downloaded and checked.

Raw arrays: ``names`` and ``texts``, numpy unicode arrays (n,), sorted by name, without the documents
shorter than ``params.data.text.min_chars`` characters. The corpus is fixed for a given Python
version (it is what ``help("if")`` prints), so ``seed`` is unused here.

Processed arrays: ``{train,val,test}_names`` and ``{train,val,test}_texts``: a split by document,
each split in name order.
"""

from __future__ import annotations

import re
import string

import numpy as np

from gdl.data.splits import split_indices, take


# The book's corpora: where Kaggle serves them, the JSON file inside the archive, and how the book turns one
# record into one document (chapter 5: "Recipe for <title> | <directions>"; chapter 9: "wine review : ...").
BOOK_SOURCES = {
    "recipes": {"url": "https://www.kaggle.com/api/v1/datasets/download/hugodarwood/epirecipes",
                "member": "full_format_recipes.json"},
    "wine_reviews": {"url": "https://www.kaggle.com/api/v1/datasets/download/zynicide/wine-reviews",
                     "member": "winemag-data-130k-v2.json"},
}


def book_document(source: str, record: dict) -> str | None:
    """One record of a book corpus as the book writes it, or None where a field it needs is missing."""
    if source == "recipes":
        if record.get("title") is None or not record.get("directions"):
            return None
        return "Recipe for " + record["title"] + " | " + " ".join(record["directions"])
    fields = [record.get(k) for k in ("country", "province", "variety", "description")]
    return None if any(f is None for f in fields) else "wine review : " + " : ".join(fields)


def read_book_corpus(path, source: str) -> list[str]:
    """The documents of a downloaded book corpus (a .zip holding the JSON file, or the JSON itself)."""
    import json
    import zipfile
    from pathlib import Path

    member = BOOK_SOURCES[source]["member"]
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == member]
                if not names:
                    raise ValueError(f"{path}: no {member} in the archive (has {archive.namelist()[:5]})")
                records = json.loads(archive.read(names[0]))
        else:
            records = json.loads(Path(path).read_bytes())
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable {source} corpus ({exc})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    return [d for d in (book_document(source, r) for r in records if isinstance(r, dict)) if d]


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    del seed
    if cfg.source != "embedded":
        from gdl.download import fetch

        url = cfg.url or BOOK_SOURCES[cfg.source]["url"]
        # fetch returns only once the file has the pinned SHA-256 (a mismatch leaves nothing behind).
        path = fetch(url, f"data/downloads/{cfg.source}.download", cfg.sha256)  # a .zip or the JSON: read by content
        texts = read_book_corpus(path, cfg.source)
        if not texts:
            raise ValueError(f"{path}: no {cfg.source} record has the fields the book uses")
        return {"names": np.array([f"{cfg.source}/{i:06d}" for i in range(len(texts))], dtype=str),
                "texts": np.array(texts, dtype=str)}
    from pydoc_data.topics import topics

    names = sorted(name for name, text in topics.items() if len(text) >= cfg.min_chars)
    if not names:
        raise ValueError(f"no pydoc topic has at least {cfg.min_chars} characters")
    return {"names": np.array(names, dtype=str), "texts": np.array([topics[n] for n in names], dtype=str)}


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    splits = split_indices(len(raw["names"]), cfg.val_fraction, cfg.test_fraction, seed)
    return take(raw, splits, {"names": "names", "texts": "texts"})


# ---------------------------------------------------------------- tokenise ------------------------------
# reST heading rules ("*****", "=====", "-----") underline every title of the pydoc topics: long runs of
# one character that a model would learn to copy for free. They carry no language, so they go.
_RULE = re.compile(r"^[ \t]*([=\-*~^\"#+_`.])\1{2,}[ \t]*$", re.MULTILINE)
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


def standardise(text: str) -> str:
    """The book's text preparation: lower case, every punctuation mark a word of its own, heading rules
    dropped, whitespace (newlines included) collapsed to single spaces."""
    text = _PUNCTUATION.sub(r" \1 ", _RULE.sub(" ", text).lower())
    return " ".join(text.split())


def tokenise(processed: dict[str, np.ndarray], cfg) -> dict[str, np.ndarray]:
    """Word-level token ids of every split (see gdl/sequences.py for the layout) with Keras'
    TextVectorization, its vocabulary adapted on the training split only: `vocab` (id 0 pad, 1 [UNK], then
    the training tokens by frequency), `<split>_ids` and `<split>_offsets` (one sequence per document)."""
    from keras import layers

    splits = ("train", "val", "test")
    docs = {split: [standardise(str(t)) for t in processed[f"{split}_texts"]] for split in splits}
    vectorize = layers.TextVectorization(max_tokens=cfg.vocab_size, standardize=None, split="whitespace",
                                         output_mode="int")
    vectorize.adapt(docs["train"], batch_size=len(docs["train"]))
    out = {"vocab": np.array(vectorize.get_vocabulary(), dtype=str)}
    for split in splits:
        ids = [np.asarray(vectorize(doc), dtype=np.int32) for doc in docs[split]] or [np.zeros(0, np.int32)]
        out[f"{split}_ids"] = np.concatenate(ids).astype(np.int32)
        out[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(i) for i in ids])]).astype(np.int64)
        out[f"{split}_names"] = processed[f"{split}_names"]
    return out


def detokenise(ids, vocab) -> str:
    """Token ids back to readable text: words joined by spaces, no space before closing punctuation."""
    words = [str(vocab[i]) for i in ids if i != 0]
    text = " ".join(words)
    return re.sub(r" ([.,;:!?)\]}])", r"\1", re.sub(r"([(\[{]) ", r"\1", text))
