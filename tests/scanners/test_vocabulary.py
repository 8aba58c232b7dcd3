"""A registered reference's vocabulary is kept packed (its strings end to end in one): it must read
exactly as the tuple of strings it replaces, and compare as the tokenizer check expects."""

from __future__ import annotations

import sys

import pytest

from checker.scanners.tokenizer import PackedStrings, Vocabulary, compare_vocabularies, packed

TRICKY = ["", "a", "Ġthe", "▁été", "日本語", "🙂", "\ud800", "a\x00b", "<|end_of_text|>", ""]


def test_packed_strings_read_as_the_tuple_they_replace():
    p = PackedStrings(TRICKY)
    assert len(p) == len(TRICKY) and list(p) == TRICKY and tuple(p) == tuple(TRICKY)
    assert [p[i] for i in range(len(TRICKY))] == TRICKY and p[-1] == TRICKY[-1] and p[-3] == TRICKY[-3]
    assert p[2:5] == tuple(TRICKY[2:5]) and p[::-3] == tuple(TRICKY[::-3])
    with pytest.raises(IndexError):
        p[len(TRICKY)]
    with pytest.raises(IndexError):
        p[-len(TRICKY) - 1]
    assert p == tuple(TRICKY) and tuple(TRICKY) == p and p == PackedStrings(TRICKY)
    assert hash(p) == hash(PackedStrings(TRICKY))
    assert p != tuple(TRICKY[:-1]) and p != PackedStrings(TRICKY[:-1] + ["x"])
    assert PackedStrings(["ab", "c"]) != PackedStrings(["a", "bc"])  # same bytes, other boundaries
    assert not PackedStrings([]) and PackedStrings([]) == ()
    assert isinstance(packed(["a", None]), tuple) and packed(["a", None]) == ("a", None)
    assert packed(t for t in TRICKY) == tuple(TRICKY)  # a generator is taken whole first
    assert p != list(TRICKY) and "PackedStrings(['', 'a', 'Ġthe', ...], 10 items)" == repr(p)


def test_a_packed_vocabulary_is_several_times_smaller():
    tokens = [f"Ġtok{i}" for i in range(20000)]
    as_tuple = sys.getsizeof(tuple(tokens)) + sum(sys.getsizeof(t) for t in tokens)
    p = PackedStrings(tokens)
    as_packed = sys.getsizeof(p._text) + sys.getsizeof(p._ends)
    assert as_packed * 4 < as_tuple, (as_packed, as_tuple)


def test_the_tokenizer_check_gives_the_same_figures_packed_or_not():
    sub = Vocabulary("tokenizer.json", ("a", "b", "c", "d", "é"), ("a b", "c d"))
    ref_tokens, ref_merges = ("b", "a", "c", "x", "é"), ("a b", "x c", "c d")
    plain = compare_vocabularies(sub, Vocabulary("tokenizer.json", ref_tokens, ref_merges), "r")
    packed_ref = Vocabulary("tokenizer.json", PackedStrings(ref_tokens), PackedStrings(ref_merges))
    assert compare_vocabularies(sub, packed_ref, "r") == plain
    assert plain.shared_tokens == 4 and plain.same_id_fraction == 0.5 and not plain.identical
    same = Vocabulary("tokenizer.json", PackedStrings(sub.tokens), PackedStrings(sub.merges))
    assert compare_vocabularies(sub, same, "r").identical
    assert "_ids" not in packed_ref.__dict__  # a reference's token index is not kept after its comparison


def test_a_registered_reference_loads_its_vocabulary_and_anchor_tokens_packed(zoo):
    import json

    from checker.references.registry import load_references

    (entry, fp), *_ = [(e, f) for e, f in load_references(zoo.registry) if f.vocab is not None]
    saved = json.loads((zoo.registry / entry.id.replace("/", "__") / "fingerprint.json").read_text())
    assert isinstance(fp.vocab.tokens, PackedStrings) and fp.vocab.tokens == tuple(saved["vocab"]["tokens"])
    tokens = [tp for tp in fp.tensors if len(tp.anchor_tokens)]
    assert tokens and all(isinstance(tp.anchor_tokens, PackedStrings) for tp in tokens)
    by_name = {t["name"]: t["anchor_tokens"] for t in saved["tensors"]}
    assert all(tp.anchor_tokens == tuple(by_name[tp.role.name]) for tp in tokens)
