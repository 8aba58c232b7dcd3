"""Read a tokenizer's vocabulary and merges without running any tokenizer code.

Supports ``tokenizer.json`` (Hugging Face tokenizers: BPE, WordPiece, Unigram),
``vocab.json`` + ``merges.txt`` (GPT-2 style) and ``vocab.txt`` (BERT style).
The vocabulary lets embeddings be compared row by row for the token strings
that two models share, whatever their ids.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

from checker.errors import ScanError
from checker.yamlio import load_json


class PackedStrings(Sequence):
    """A long sequence of strings kept as one string, the items end to end, and where each ends.
    It indexes, slices (to a tuple), iterates and compares equal to a tuple of the same strings;
    its hash is its own (a packed and a tuple form of one vocabulary must not share a dict or a
    cache key: they would only miss each other). A 128,256-token vocabulary takes 1.5-5 MB so
    (one byte a character, up to four where a token holds an emoji), against 8-11 MB as a tuple
    of strings, and packs in ~11 ms; an audit keeps every registered reference's vocabulary (and
    merges) for its whole run, a registry of dozens of them."""

    __slots__ = ("_text", "_ends", "_hash")

    def __init__(self, items: Sequence[str]):
        self._text = "".join(items)
        self._ends = array("i" if len(self._text) < 2**31 else "q", accumulate(map(len, items)))
        self._hash: int | None = None

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        n = len(self._ends)
        if not -n <= i < n:
            raise IndexError("PackedStrings index out of range")
        i %= n
        return self._text[self._ends[i - 1] if i else 0:self._ends[i]]

    def __iter__(self) -> Iterator[str]:
        text, start = self._text, 0
        for end in self._ends:
            yield text[start:end]
            start = end

    def __eq__(self, other) -> bool:
        if isinstance(other, PackedStrings):
            return self._text == other._text and self._ends == other._ends
        if isinstance(other, tuple):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:  # equal texts pack with the same type code
            self._hash = hash((self._text, self._ends.tobytes()))
        return self._hash

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s in self[:3])
        return f"PackedStrings([{head}{', ...' if len(self) > 3 else ''}], {len(self)} items)"


def packed(items: Iterable) -> Sequence:
    """``items`` as :class:`PackedStrings` when every item is a string, else as a tuple."""
    items = list(items)
    return PackedStrings(items) if all(isinstance(s, str) for s in items) else tuple(items)


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id, and BPE merges in rank order (empty when not BPE): tuples, or
    :class:`PackedStrings` for a registered reference's."""

    file: str
    tokens: Sequence[str]
    merges: Sequence[str]

    def ids(self, keep: bool = True) -> dict[str, int]:
        """Token string -> id, built once per vocabulary and kept (``keep``: the submission's, which
        every reference is compared with); a reference's is built for its comparison only."""
        if "_ids" in self.__dict__:
            return self.__dict__["_ids"]
        ids = {t: i for i, t in enumerate(self.tokens) if t is not None}
        if keep:
            object.__setattr__(self, "_ids", ids)
        return ids


#: Ids far beyond the number of tokens mean a corrupt file, not a vocabulary (and would
#: make a list of billions of entries).
MAX_ID_SLACK = 1_000_000


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScanError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ScanError(str(path), f"cannot read ({exc.strerror or exc})") from None


def _read_json(path: Path):
    return load_json(path, ScanError, want_object=False)


def _check_id(idx, tok, count: int, path: Path) -> int:
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0 or idx > count + MAX_ID_SLACK:
        raise ScanError(str(path), f"token {tok!r} has a bad id {idx!r}")
    return idx


def _from_mapping(vocab: dict, path: Path) -> tuple[str, ...]:
    ids = {tok: _check_id(idx, tok, len(vocab), path) for tok, idx in vocab.items()}
    size = max(ids.values()) + 1 if ids else 0
    tokens: list = [None] * size
    for tok, idx in ids.items():
        tokens[idx] = tok
    return tuple("" if t is None else t for t in tokens)


def read_vocabulary(folder: Path) -> Vocabulary | None:
    """The vocabulary of a model folder, or None when it ships no tokenizer."""
    tj = folder / "tokenizer.json"
    if tj.is_file():
        data = _read_json(tj)
        model = data.get("model", {}) if isinstance(data, dict) else {}
        vocab = model.get("vocab")
        if isinstance(vocab, dict):
            tokens = list(_from_mapping(vocab, tj))
        elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
            tokens = [str(v[0]) if isinstance(v, list) and v else str(v) for v in vocab]
        else:
            raise ScanError(str(tj), "no model.vocab in tokenizer.json")
        for added in data.get("added_tokens", []) or []:
            idx, content = added.get("id"), added.get("content")
            if isinstance(idx, int) and isinstance(content, str):
                _check_id(idx, content, len(tokens), tj)
                tokens.extend([""] * (idx + 1 - len(tokens)))
                tokens[idx] = content
        merges = tuple(m if isinstance(m, str) else " ".join(m) for m in model.get("merges", []) or [])
        return Vocabulary("tokenizer.json", tuple(tokens), merges)
    vj = folder / "vocab.json"
    if vj.is_file():
        data = _read_json(vj)
        if not isinstance(data, dict):
            raise ScanError(str(vj), "expected a mapping of token to id")
        merges_path = folder / "merges.txt"
        merges: tuple[str, ...] = ()
        if merges_path.is_file():
            lines = _read_text(merges_path).splitlines()
            merges = tuple(line for line in lines if line and not line.startswith("#version"))
        return Vocabulary("vocab.json", _from_mapping(data, vj), merges)
    vt = folder / "vocab.txt"
    if vt.is_file():
        return Vocabulary("vocab.txt", tuple(_read_text(vt).splitlines()), ())
    return None


@dataclass(frozen=True)
class TokenizerComparison:
    """How much of a reference's tokenizer the submission shares.

    Reusing a tokenizer is common and legitimate; it never decides weight
    provenance. ``same_id_fraction`` (shared tokens that keep their id) and
    ``merges_agreement`` (shared merges in the same relative order) separate a
    copied tokenizer from one trained independently on similar text, which
    shares many tokens but not their ids or merge order. The chance level of
    ``same_id_fraction`` for unrelated id orders is ``1 / vocabulary size``.
    """

    reference: str
    vocab_jaccard: float
    shared_tokens: int
    same_id_fraction: float
    same_id_chance: float
    merges_agreement: float | None
    identical: bool


def compare_vocabularies(sub: Vocabulary, ref: Vocabulary, reference: str) -> TokenizerComparison:
    return replace(_compared(sub, ref), reference=reference)


@lru_cache(maxsize=8)
def _compared(sub: Vocabulary, ref: Vocabulary) -> TokenizerComparison:
    """:func:`compare_vocabularies` by content: references sharing a tokenizer (a family, a
    registry's clones) cost a hash and a comparison of their tokens, not the set operations."""
    s_ids, r_ids = sub.ids(), ref.ids(keep=False)
    shared = set(s_ids) & set(r_ids)
    union = set(s_ids) | set(r_ids)
    same = sum(1 for t in shared if s_ids[t] == r_ids[t])
    merges = None
    if sub.merges and ref.merges:
        r_rank = {m: i for i, m in enumerate(ref.merges)}
        common = [r_rank[m] for m in sub.merges if m in r_rank]
        if len(common) >= 2:
            ordered = sum(1 for a, b in zip(common, common[1:]) if a < b)
            merges = round((len(common) / max(len(sub.merges), 1)) * (ordered / (len(common) - 1)), 6)
        else:
            merges = 0.0
    return TokenizerComparison(
        reference="", vocab_jaccard=round(len(shared) / max(len(union), 1), 6), shared_tokens=len(shared),
        same_id_fraction=round(same / max(len(shared), 1), 6), same_id_chance=round(1 / max(len(union), 1), 8),
        merges_agreement=merges, identical=sub.tokens == ref.tokens and sub.merges == ref.merges,
    )


def model_vocabulary(folder: Path, reader: object) -> Vocabulary | None:
    """The tokenizer files of a model folder, else the vocabulary its weights file embeds (GGUF)."""
    vocab = read_vocabulary(folder)
    if vocab is None and hasattr(reader, "vocabulary"):
        vocab = reader.vocabulary()
    return vocab
