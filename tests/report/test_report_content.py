"""What a reader of the report sees: every section in order, readable names, one formatting of each
figure, both languages, and submission text shown literally."""

from __future__ import annotations

import copy
import io
import re
import string
from html import escape, unescape

import pytest
from rich.console import Console

from checker.audit import audit
from checker.cli.display import verdict_table
from checker.errors import ReportError
from checker.report.context import humanize, to_context
from checker.report.fmt import fmt_p
from checker.report.i18n import LANGS, messages
from checker.report.json_report import build_report, validate_report
from checker.report.messages import en, ko
from checker.report.render import md_escape, render_html, render_markdown
from checker.rules import load_pack

HOSTILE_CARD = "<script>alert(1)</script> {{ 7*7 }} {% if 1 %}jinja{% endif %}"


@pytest.fixture(scope="module")
def report(zoo):
    folder = zoo.save("content-composite", zoo.ft_vit, zoo.ind_lm)
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\nbase_model: \"{HOSTILE_CARD}\"\n---\n# x\n")
    return build_report(audit(str(folder), zoo.registry, load_pack()), "fromscratch audit content-composite --registry refs")


SECTIONS = ("sec-cover", "sec-summary", "sec-criteria", "sec-weights", "sec-lineage", "sec-licenses", "sec-disclosure",
            "sec-waivers", "sec-notev", "sec-repro", "sec-limits")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_catalogues_have_the_same_keys_and_placeholders():
    assert set(en.MESSAGES) == set(ko.MESSAGES)
    for key, text in en.MESSAGES.items():
        assert _placeholders(text) == _placeholders(ko.MESSAGES[key]), key


@pytest.mark.parametrize("lang", LANGS)
def test_html_has_every_section_in_the_issue_order(report, lang):
    html = render_html(report, lang)
    positions = [html.index(f'id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions)
    m = messages(lang)
    for key in ("limits.legal", "sec.glossary", "summary.change"):
        assert m.t(key) in html


def test_summary_says_what_was_copied_from_what_and_how_much(report):
    ctx = to_context(report, "en")
    visual = next(m for m in report["modules"] if m["name"] == "visual")
    best = next(x for x in visual["matches"] if x["reference_module"] == "visual")
    text = " ".join(ctx["summary"]["copied"])
    assert "The module visual (vision encoder" in text and "foreign-vlm" in text and "0→0, 1→1, 2→2" in text
    assert fmt_p(best["p_value_corrected"], best["log10_p_value_corrected"]) in text
    assert "W1" in ctx["summary"]["failed"]


def test_statistics_are_named_for_people_with_a_glossary(report):
    html = render_html(report, "en")
    visible = re.sub(r"<[^>]+>", " ", html)
    assert "heldout_row_pearson" not in visible and "shared_token_pearson" not in visible
    assert "held-out unit correlation" in visible and "Glossary" in visible


def test_every_p_value_reads_the_same_in_table_summary_terminal_and_markdown(report):
    visual = next(m for m in report["modules"] if m["name"] == "visual")
    best = next(x for x in visual["matches"] if x["reference_module"] == "visual")
    p = fmt_p(best["p_value_corrected"], best["log10_p_value_corrected"])
    html, md = render_html(report, "en"), render_markdown(report, "en")
    assert html.count(escape(p)) >= 3  # overview table, module detail, summary
    assert p in md
    term = Console(width=80, record=True, file=io.StringIO())
    verdict_table(report, "en", term)
    assert p in term.export_text()
    w1 = next(c for c in report["criteria"] if c["id"] == "W1")
    assert any(f"p {p} " in e["text"] for e in w1["evidence"])  # the criterion's own message agrees


def test_weights_evidence_shows_heatmap_null_alignment_and_named_weak_evidence(report):
    html = render_html(report, "en")
    assert html.count('<svg class="heatmap"') >= 1 and html.count('<svg class="nullcurve"') >= 1
    assert "Recovered alignment" in html and "not decisive" in html
    visual = next(m for m in report["modules"] if m["name"] == "visual")
    best = next(x for x in visual["matches"] if x["reference_module"] == "visual")
    weak = best["weak_evidence"]
    assert weak and all(w["tensor"] or w.get("tensor_candidates") for w in weak)
    assert all(w["decisive"] is False for w in weak)
    named = weak[0]["tensor"] or weak[0]["tensor_candidates"][0]
    assert named in html
    assert 0 < visual["coverage"] <= 1 and best["layer_matrix"]["sub_layers"] == [0, 1, 2]


def test_korean_report_uses_the_korean_catalogue(report):
    html = render_html(report, "ko")
    assert '<html lang="ko">' in html
    for word in ("판정", "불합격", "평가 기준", "재현 방법", "법률 자문이 아닙니다", "용어 설명"):
        assert word in html
    md = render_markdown(report, "ko")
    assert "불합격" in md and "감사 보고서" in md


def test_model_card_text_shows_literally_in_html_and_markdown(report):
    html = render_html(report, "en")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} {% if 1 %}jinja{% endif %}" in html  # shown, never evaluated
    md = render_markdown(report, "en")
    assert "<script>" not in md and "\\<script\\>" in md and "\\{\\{ 7\\*7 \\}\\}" in md


def test_reproducibility_lists_command_and_versions(report):
    rep = report["reproducibility"]
    assert rep["command"].startswith("fromscratch audit") and {"fromscratch", "python", "torch", "numpy"} <= set(rep["versions"])
    assert rep["command"] in render_html(report, "en")


def _visible(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def _english_fragments() -> list[str]:
    """The fixed words of every verdict sentence in English: runs of three words or more between placeholders."""
    out = []
    for key, text in en.MESSAGES.items():
        if key.startswith("v."):
            for literal, *_ in string.Formatter().parse(text):
                out += [f.strip() for f in re.split(r"[;:()\[\]]", literal) if len(f.split()) >= 3]
    return sorted(set(out))


def test_findings_reasons_and_evidence_carry_their_catalogue_keys(report):
    keyed = report["criteria"]
    assert keyed and all(c["message_key"].startswith("v.") and isinstance(c["message_args"], dict) for c in keyed)
    assert all(e["text_key"].startswith("v.") for c in keyed for e in c["evidence"])
    assert all(mod["reason_key"].startswith("v.") for mod in report["modules"])
    m = messages("en")
    for c in keyed:
        assert m.say({"key": c["message_key"], "args": c["message_args"]}) == c["message"]  # from the JSON alone
    a1 = next(c for c in report["criteria"] if c["kind"] == "architecture")
    assert a1["message_key"] == report["architecture"]["summary_key"] == "v.arch.summary"
    assert m.say({"key": "v.arch.summary", "args": report["architecture"]["summary_args"]}) == report["architecture"]["summary"]


def test_korean_report_writes_every_finding_in_korean(report):
    """The audit fails W1 (copied vision encoder), L1 (inherited third-party license) and L2 (undeclared
    derivation, third-party ancestor): each finding, reason and evidence line is written in Korean."""
    failed = {c["id"] for c in report["criteria"] if c["status"] == "fail"}
    assert {"W1", "L1", "L2"} <= failed
    html, md = render_html(report, "ko"), render_markdown(report, "ko")
    text = _visible(html)
    ko_m = messages("ko")
    for c in report["criteria"]:
        if c.get("message_key"):
            assert c["message"] not in text and c["message"] not in md
            assert escape(humanize(ko_m.say({"key": c["message_key"], "args": c["message_args"]}), ko_m)) in html
    quoted = [report["rulepack"]["title"], report["rulepack"]["clause"]]
    quoted += [x for c in report["criteria"] for x in (c["title"], c["remediation"] or "")]
    for q in quoted:  # the rule pack's words and the audit stage's summary are shown as written
        text = text.replace(" ".join(q.split()), "")
        md = md.replace(md_escape(q), "")
    for frag in _english_fragments():
        assert frag not in text, frag
        assert frag not in md, frag
    for mod in report["modules"]:
        assert mod["reason"] not in text
    w1 = next(c for c in ctx_criteria(report, "ko") if c["id"] == "W1")
    assert w1["message"].startswith("모듈 ") and "파생되었습니다" in w1["message"] and not w1["lead"]
    assert messages("ko").t("crit.detail") not in text  # no finding is free text
    arch = report["architecture"]
    assert arch["summary"] not in text and escape(ko_m.say({"key": arch["summary_key"], "args": arch["summary_args"]})) in html
    assert "레이어" in ko_m.say({"key": arch["summary_key"], "args": arch["summary_args"]})
    term = Console(width=80, record=True, file=io.StringIO())
    verdict_table(report, "ko", term)
    shown = " ".join(term.export_text().split())
    assert "파생되었습니다" in shown and "derive from a registered reference" not in shown


def ctx_criteria(report, lang):
    return to_context(report, lang)["criteria"]


def test_english_findings_are_the_messages_of_the_json(report):
    """The English report reads as it did before the catalogue wrote the findings: the message itself."""
    m = messages("en")
    html, md = render_html(report, "en"), render_markdown(report, "en")
    for c in report["criteria"]:
        assert escape(humanize(c["message"], m)) in html
        for e in c["evidence"][:12]:
            assert escape(humanize(e["text"], m)) in html
    for c in ctx_criteria(report, "en"):
        assert c["lead"] == ""
    assert "Detail" not in _visible(html)
    assert all(md_escape(humanize(c["message"], m)) in md for c in report["criteria"])


def test_schema_checks_the_sentences(report):
    bad = copy.deepcopy(report)
    bad["criteria"][0]["message_args"]["modules"] = [{"args": {}}]  # a nested sentence without its key
    with pytest.raises(ReportError, match="does not match its schema"):
        validate_report(bad)
    validate_report(report)
