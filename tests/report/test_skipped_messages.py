"""Comparisons the engine could not make ("not evaluated") are catalogue sentences: their English
reason stays in the JSON report, and a Korean report writes them in Korean only."""

from __future__ import annotations

import re
from dataclasses import asdict
from html import escape, unescape

import pytest

from checker import synth
from checker.audit import audit
from checker.cache import _evidence
from checker.metrics.interface import ModuleEvidence, Skipped
from checker.modules import Module, TensorRole
from checker.report.i18n import messages
from checker.report.json_report import build_report, validate_report
from checker.report.render import md_escape, render_html, render_markdown
from checker.rules import load_pack

ENGLISH = ("hidden sizes differ", "no anchor aligns them", "fewer than 16 shared tokens", "patch sizes differ")


@pytest.fixture(scope="module")
def report(zoo):
    """A decoder whose hidden width was pruned (48 of 64), without embeddings, LM head or tokenizer:
    no anchor can align its hidden dimensions with the reference's, so those comparisons are skipped."""
    s = synth.prune_hidden(synth.Subject(synth.state(zoo.ft_lm), list(zoo.vocab), zoo.ft_lm.config, zoo.ref_vit.config), keep=0.75)
    state = {k: t for k, t in s.state.items() if "embed_tokens" not in k and "lm_head" not in k}
    folder = synth.save_checkpoint(zoo.root / "skipped-hidden", state, None)
    return build_report(audit(str(folder), zoo.registry, load_pack()))


def _skipped(report):
    return [s for mod in report["modules"] for s in mod["skipped"]]


def test_the_json_carries_the_key_and_the_english_reason(report):
    validate_report(report)
    skipped = _skipped(report)
    assert skipped and all(s["reason_key"].startswith("v.skip.") for s in skipped)
    hidden = next(s for s in skipped if s["reason_key"] == "v.skip.hidden_sizes")
    assert hidden["reason"] == "hidden sizes differ (48 vs 64) and no anchor aligns them"
    assert hidden["reason_args"] == {"hidden": 48, "reference_hidden": 64}
    m = messages("en")
    for s in skipped:
        assert m.say({"key": s["reason_key"], "args": s["reason_args"]}) == s["reason"]


def test_english_report_shows_the_reason_as_before(report):
    html, md = render_html(report, "en"), render_markdown(report, "en")
    assert escape("hidden sizes differ (48 vs 64) and no anchor aligns them") in html
    assert md_escape("hidden sizes differ (48 vs 64) and no anchor aligns them") in md


def test_korean_report_writes_the_skipped_comparison_in_korean(report):
    html, md = render_html(report, "ko"), render_markdown(report, "ko")
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    korean = "은닉 차원이 다르고(48 대 64) 이를 정렬할 기준점이 없습니다"
    assert korean in text and korean in md
    for frag in ENGLISH:
        assert frag not in text and frag not in md, frag
    # the architecture summary (A1 and the cover) is Korean too
    assert "레이어 4개" in text and "4 layers" not in text and "module map(s)" not in text
    assert "module map(s)" not in md


def test_skipped_reasons_of_the_engine_reproduce_their_english_text():
    m = messages("en")
    for s in (Skipped("a", "fewer than 16 shared tokens", "v.skip.few_tokens"), Skipped("b", "patch sizes differ", "v.skip.patch_sizes"),
              Skipped("c", "hidden sizes differ (64 vs 48) and no anchor aligns them", "v.skip.hidden_sizes",
                      (("hidden", 64), ("reference_hidden", 48)))):
        assert m.say({"key": s.key, "args": dict(s.args)}) == s.reason
        assert re.search(r"[\uac00-\ud7af]", messages("ko").say({"key": s.key, "args": dict(s.args)}))


def test_the_cache_keeps_the_keys():
    module = Module("m", "decoder", "llama", (TensorRole("m.w", (4, 4), "m", "decoder", 0, "up", 0, True),))
    ev = ModuleEvidence(module, (), (Skipped("a ~ b", "hidden sizes differ (64 vs 48) and no anchor aligns them", "v.skip.hidden_sizes",
                                             (("hidden", 64), ("reference_hidden", 48))), Skipped("c ~ d", "free text")))
    import json
    back = _evidence(json.loads(json.dumps(asdict(ev))))
    assert back.skipped == ev.skipped and hash(back.skipped)
    old = asdict(ev)
    old["skipped"] = [{"what": "a ~ b", "reason": "r"}]  # an entry written before the keys existed
    assert _evidence(old).skipped == (Skipped("a ~ b", "r"),)
