"""Rule packs fail closed: every bad fixture stops with its exact file:line: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.errors import RulePackError
from checker.rules import load_pack, shipped_packs

FIXTURES = Path(__file__).parent / "fixtures" / "packs"
BAD = sorted(FIXTURES.glob("bad_*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: ")
    return first[len("# expect: "):]


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_pack_is_rejected_with_its_line(path):
    with pytest.raises(RulePackError) as err:
        load_pack(path)
    assert str(err.value) == f"{path}:{_expected(path)}"


def test_good_pack_loads_typed_parameters():
    p = load_pack(FIXTURES / "good_minimal.yaml")
    w1, w2 = p.criteria
    assert w1.params.significance == 0.001  # inherited from defaults
    assert w2.params.max_fraction == 0.1
    assert p.waivers[0].owner == "Jane Doe" and len(p.sha256) == 64


@pytest.mark.parametrize("path", shipped_packs(), ids=lambda p: p.stem)
def test_shipped_packs_are_valid(path):
    assert load_pack(path).criteria


def test_unknown_pack_id_suggests_a_name():
    with pytest.raises(RulePackError) as err:
        load_pack("sovereign-ai-2024")
    assert str(err.value) == "sovereign-ai-2024: no such rule pack; did you mean 'sovereign-ai-2025'?"
