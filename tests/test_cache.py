"""The evidence cache: a re-audit of unchanged weights reads none, and changed weights are re-read."""

from __future__ import annotations

import pytest
import torch

from checker import synth
from checker.audit import audit
from checker.cache import EvidenceCache
from checker.errors import UsageError
from checker.hardware import resolve_device
from checker.rules import load_pack
from checker.weights.stream import CheckpointStream


def _figures(result):
    return [(m.name, m.status, m.best.log10_p if m.best else None) for m in result.modules]


def test_reaudit_reads_no_weights_and_agrees(zoo, tmp_path, monkeypatch):
    folder = zoo.save("cached", zoo.ft_vit, zoo.ind_lm)
    cache = EvidenceCache(tmp_path / "cache")
    first = audit(str(folder), zoo.registry, load_pack(), cache=cache)

    def no_reading(self):
        raise AssertionError("weights were read")
    monkeypatch.setattr(CheckpointStream, "__iter__", no_reading)
    again = audit(str(folder), zoo.registry, load_pack("self-check"), cache=cache)  # a rule change
    assert _figures(again) == _figures(first)
    assert again.submission.files == first.submission.files
    with pytest.raises(AssertionError, match="weights were read"):
        audit(str(folder), zoo.registry, load_pack(), cache=None)  # --no-cache reads them


def test_changed_weights_are_read_again(zoo, tmp_path):
    folder = zoo.save("cached2", zoo.ft_vit, zoo.ind_lm)
    cache = EvidenceCache(tmp_path / "cache")
    first = audit(str(folder), zoo.registry, load_pack(), cache=cache)
    state = synth.state(zoo.ref_vit) | synth.state(zoo.ind_lm)  # the vision tower is now an exact copy
    synth.save_checkpoint(folder, state, zoo.vocab)
    second = audit(str(folder), zoo.registry, load_pack(), cache=cache)
    assert second.submission.files != first.submission.files
    assert {m.name: m.status for m in second.modules}["visual"] == "identical"


def test_cuda_is_refused_in_one_line_when_absent():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"
