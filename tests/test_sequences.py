"""Token windows, the n-gram baselines, the vocabulary guard, text tokenisation and GPT's key/value cache."""

import numpy as np
import pytest

from gdl import ngrams
from gdl.sequences import PAD, VocabularyError, check_vocab, sample_tokens, vocab_of, windows


def test_windows_never_cross_sequences_and_cover_every_target_once():
    ids = np.arange(2, 2 + 11, dtype=np.int32)  # two sequences: 7 and 4 tokens
    offsets = np.array([0, 7, 11])
    w = windows(ids, offsets, 3)
    np.testing.assert_array_equal(w, [[2, 3, 4, 5], [5, 6, 7, 8], [9, 10, 11, 12]])
    targets = w[:, 1:][w[:, 1:] != PAD]
    expected = np.concatenate([ids[1:7], ids[8:11]])  # every token but each sequence's first
    np.testing.assert_array_equal(np.sort(targets), np.sort(expected))
    for row in w:  # a window holds tokens of one sequence only
        real = row[row != PAD]
        assert (real < 9).all() or (real >= 9).all()


def test_ngram_distributions_sum_to_one_and_bigram_beats_unigram_on_structured_data():
    rng = np.random.default_rng(0)
    v = 12
    # a Markov chain: token t is mostly followed by t + 1
    seq = [2]
    for _ in range(3000):
        seq.append(seq[-1] + 1 if seq[-1] < v - 1 and rng.random() < 0.8 else int(rng.integers(2, v)))
    ids, offsets = np.array(seq, np.int32), np.array([0, 2000, 3001])
    val = windows(ids[2000:], np.array([0, 1001]), 20)
    unigram, bigram = ngrams.fit_baselines((ids[:2000], np.array([0, 2000])), val, v)
    for model in (unigram, bigram):
        for prev in range(1, v):
            p = np.exp(model.log_prob(np.full(v - 1, prev), np.arange(1, v)))
            assert abs(p.sum() - 1) < 1e-9
    assert ngrams.mean_nll(ngrams.score(bigram, val), val) < ngrams.mean_nll(ngrams.score(unigram, val), val) - 0.5
    assert np.exp(bigram.log_prob(np.array([20 % v]), np.array([3]))) > 0  # unseen context: continuation


def test_bootstrap_std_shrinks_with_more_windows():
    rng = np.random.default_rng(1)
    small, large = rng.integers(2, 9, (10, 9)), rng.integers(2, 9, (400, 9))
    lp = lambda w: -rng.random((len(w), 8)) * 3  # noqa: E731
    assert ngrams.bootstrap_std(lp(large), large, 50, 0) < ngrams.bootstrap_std(lp(small), small, 50, 0)


def test_a_model_refuses_another_tokenisation():
    data = {"vocab": np.array(["", "[UNK]", "the", "a"])}
    trained = vocab_of(data)
    check_vocab(trained, data, "models/lstm/vocab.json")  # the same: fine
    other = {"vocab": np.array(["", "[UNK]", "a", "the"])}
    with pytest.raises(VocabularyError, match=r"models/lstm/vocab.json: .*another tokenisation.*first difference at id 2"):
        check_vocab(trained, other, "models/lstm/vocab.json")
    with pytest.raises(VocabularyError, match="note_vocab"):
        check_vocab(trained, {**data, "note_vocab": np.array(["", "[UNK]"])}, "models/x/vocab.json")


def test_sampling_is_seeded_and_never_draws_pad_or_unk():
    uniform = lambda ctx: np.zeros((len(ctx), 6))  # noqa: E731
    a = sample_tokens(uniform, np.full((4, 1), 2), 30, 1.0, seed=3)
    np.testing.assert_array_equal(a, sample_tokens(uniform, np.full((4, 1), 2), 30, 1.0, seed=3))
    assert a.shape == (4, 31) and a.min() >= 2


def test_text_tokenisation_is_the_books_and_deterministic():
    from types import SimpleNamespace

    from gdl.data.text import detokenise, standardise, tokenise

    assert standardise("Title\n*****\n\nThe if-statement, (see: x).") == "title the if - statement , ( see : x ) ."
    texts = {"train": ["The cat sat.", "The dog sat, the cat ran."], "val": ["A cat sat."], "test": ["The bird."]}
    processed = {f"{s}_texts": np.array(t) for s, t in texts.items()} | {
        f"{s}_names": np.array([f"{s}{i}" for i in range(len(t))]) for s, t in texts.items()}
    out = tokenise(processed, SimpleNamespace(vocab_size=6))
    vocab = list(out["vocab"])
    assert vocab[:2] == ["", "[UNK]"] and len(vocab) == 6 and vocab[2] == "the"  # most frequent first
    assert out["test_ids"][1] == 1  # "bird" is not in the training split: [UNK]
    np.testing.assert_array_equal(out["train_offsets"], [0, 4, 12])
    again = tokenise(processed, SimpleNamespace(vocab_size=6))
    assert all(np.array_equal(out[k], again[k]) for k in out)
    assert detokenise(out["train_ids"][:4], out["vocab"]) == "the cat sat."


def test_gpt_cached_generation_matches_recomputing_the_context():
    from gdl.families.gpt import FAMILY
    from gdl.families.gpt import model as gpt

    cfg = FAMILY.config("text", "smoke")
    data = {"vocab": np.array(["", "[UNK]"] + [f"w{i}" for i in range(30)])}
    model = gpt.build(cfg, data, seed=0)
    naive, cached = gpt.next_log_probs_naive(model), gpt.CachedSampler(model)
    context = np.random.default_rng(0).integers(2, 32, (2, cfg.seq_len * 2 + 3)).astype(np.int32)
    restarts = 0
    for t in range(2, context.shape[1]):
        got = cached(context[:, :t])
        restarts += cached.start > 0 and t - cached.start == cfg.seq_len // 2
        # the cache holds context[start:t] at positions 0..: the same distribution as recomputing that window
        np.testing.assert_allclose(got, naive(context[:, cached.start:t]), atol=2e-4)
    assert restarts >= 2  # the window filled and restarted from its last half, more than once
