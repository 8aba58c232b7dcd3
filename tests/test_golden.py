"""Golden fixtures: one submission folder per case and pack, with its expected criterion results.

Each folder under tests/fixtures/golden/<pack>/<case>/ holds the submission's
files (README, LICENSE, THIRD_PARTY.yaml) and expected.yaml; the weights are
built from the session's trained models, as expected.yaml says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from checker import synth
from checker.audit import audit
from checker.references.registry import add_reference
from checker.rules import load_pack

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if (p / "expected.yaml").is_file())


@pytest.fixture(scope="module")
def llama_registry(zoo, tmp_path_factory):
    """The trained reference registered under the id a real card would declare."""
    reg = tmp_path_factory.mktemp("golden-registry")
    add_reference(str(zoo.root / "foreign-vlm"), reg, ref_id="meta-llama/Llama-3.1-8B", license="llama3.1")
    return reg


def _weights(zoo, kind: str):
    return {
        "fine_tuned_reference": (zoo.ft_vit, zoo.ft_lm),
        "independent": (zoo.ind_vit, zoo.ind_lm),
        "borrowed_vision": (zoo.ft_vit, zoo.ind_lm),
    }[kind]


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_case(zoo, llama_registry, tmp_path, case):
    expected = yaml.safe_load((case / "expected.yaml").read_text())
    folder = tmp_path / case.name
    shutil.copytree(case, folder, ignore=shutil.ignore_patterns("expected.yaml"))
    state = {}
    for model in _weights(zoo, expected["weights"]):
        state.update(synth.state(model))
    synth.save_checkpoint(folder, state, zoo.vocab)
    result = audit(str(folder), llama_registry, load_pack(case.parent.name))
    got = {c.id: c.status for c in result.criteria}
    assert got == expected["criteria"], {c.id: c.message for c in result.criteria}
    assert result.verdict == expected["verdict"]
    messages = {c.id: c.message for c in result.criteria}
    for cid, text in (expected.get("messages") or {}).items():
        assert text in messages[cid], messages[cid]
