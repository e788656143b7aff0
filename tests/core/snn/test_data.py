"""train-snn corpora: the built-in corpus, files and token arrays, bad input, and a split that covers every token
once with no overlap."""

import numpy as np
import pytest

from nmkit.core.errors import InputError
from nmkit.core.snn.data import decode, encode, load_corpus, pydoc_text, split


def test_the_builtin_corpus_round_trips_through_its_vocabulary():
    corpus = load_corpus("pydoc")
    assert len(corpus.tokens) > 400_000 and 60 < corpus.vocab_size < 200
    assert decode(corpus.tokens[:200], corpus.vocabulary) == pydoc_text()[:200]


def test_files_and_bad_input(tmp_path):
    (tmp_path / "t.txt").write_text("héllo wörld", encoding="utf-8")
    corpus = load_corpus(tmp_path / "t.txt")
    assert decode(corpus.tokens, corpus.vocabulary) == "héllo wörld"
    np.save(tmp_path / "ids.npy", np.array([3, 1, 4, 1, 5]))
    assert load_corpus(tmp_path / "ids.npy").vocab_size == 6
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    for name, message in (("empty.txt", "empty"), ("latin1.txt", "not UTF-8"), ("none.txt", "no such file")):
        with pytest.raises(InputError, match=message):
            load_corpus(tmp_path / name)


def test_the_split_is_a_seeded_partition_of_whole_blocks():
    tokens = np.arange(10_000)
    parts = split(tokens, context=24, seed=3)
    joined = np.sort(np.concatenate([p.ravel() for p in parts.values()]))
    np.testing.assert_array_equal(joined, tokens[: len(joined)])  # each token in exactly one part
    assert parts["train"].shape[1] == 100 and len(parts["valid"]) == len(parts["test"]) == 5
    np.testing.assert_array_equal(split(tokens, 24, seed=3)["valid"], parts["valid"])
    assert not np.array_equal(split(tokens, 24, seed=4)["valid"], parts["valid"])
    with pytest.raises(InputError, match="shorten the context"):
        split(tokens[:500], context=256, seed=0)


def test_prompts_encode_and_decode_both_kinds_of_corpus():
    vocabulary = sorted(set("hello world"))
    ids = encode("low", vocabulary, len(vocabulary))
    assert decode(ids, vocabulary) == "low"
    assert encode("3 0 7", None, 8) == [3, 0, 7] and decode([3, 0, 7], None) == "3 0 7 "
    for text, vocab in (("lox", vocabulary), ("3 9", None), ("a b", None), ("", vocabulary)):
        with pytest.raises(InputError, match="prompt"):
            encode(text, vocab, 8)


def test_the_stdlib_corpus_is_real_code_of_at_least_5_mb_with_a_fixed_split():
    from nmkit.core.snn.data import load_corpus, split

    corpus = load_corpus("stdlib")
    assert len(corpus.tokens) >= 5_000_000 and "def " in "".join(corpus.vocabulary[i] for i in corpus.tokens[:20000])
    first, again = split(corpus.tokens, 128, 0), split(load_corpus("stdlib").tokens, 128, 0)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert first["valid"].shape[0] == first["test"].shape[0] > 500
