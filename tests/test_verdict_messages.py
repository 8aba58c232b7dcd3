"""Every sentence of the verdict stage is a catalogue key with typed arguments, and the English
template of each key reproduces the English text of the result exactly.

The evaluators run here on hand-made facts (no model is trained), one case per branch, so that
every ``v.*`` key of the catalogue is produced at least once and checked against its English text.
"""

from __future__ import annotations

from dataclasses import replace

import datetime as dt
import re
import string
from pathlib import Path

import pytest

from checker.metrics.interface import FIXED_TABLE_KEY, AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore, Skipped
from checker.modules import Module, TensorRole
from checker.report.i18n import messages
from checker.report.messages import en, ko
from checker.rules import (
    Criterion, DerivedShareParams, DisclosureParams, LicenseParams, LineageParams, TokenizerParams, Waiver, WeightsParams,
)
from checker.scanners.disclosure import Component, Inventory
from checker.scanners.licenses import LicenseFinding, Obligation
from checker.scanners.lineage import LineageHint
from checker.scanners.tokenizer import TokenizerComparison
from checker import verdicts as v
from checker.verdicts import Architecture, Facts, Msg

VERDICTS = Path(v.__file__).parent
TODAY = dt.date(2025, 6, 1)


def _module(name: str, kind: str = "decoder", numel: int = 1000) -> Module:
    return Module(name, kind, "llama", (TensorRole(f"{name}.w", (numel, 1), name, kind, 0, "up", 0, True),))


def _match(ref: str = "ref-a", log10_p: float = -60.0, identical: float = 0.0, decisive: bool = True,
           statistic: str = "heldout_row_pearson", role: str = "up") -> Match:
    """A match whose one cell compared layer 0's ``role`` (the module below holds one such tensor)."""
    cell = LayerCell(0, 0, 0.91234, 41.26, log10_p, (RoleScore(role, role, 0.91234, 41.26, log10_p),) if decisive else (), ())
    return Match(ref, "model", "decoder", statistic, 0.91234, 41.26, log10_p, log10_p, 4, ((0, 0),), identical,
                 AlignmentSummary("identity", False, 0, 8, None, ()), (cell,), decisive)


def _facts(*evidence: ModuleEvidence, refs=("ref-a", "ref-b"), **kw) -> Facts:
    total = sum(ev.module.parameters for ev in evidence)
    return Facts(modules=evidence, total_parameters=total, reference_ids=refs, **kw)


def _ev(name, *matches, kind="decoder", numel=1000, skipped=()) -> ModuleEvidence:
    return ModuleEvidence(_module(name, kind, numel), matches, skipped)


def _crit(kind: str, params, severity: str = "critical", cid: str = "X1") -> Criterion:
    return Criterion(cid, "a criterion", kind, severity, params)


W = _crit("weights", WeightsParams(significance=0.01))

EVERY_MODULE_STATUS = _facts(
    _ev("copied", _match(identical=1.0), kind="vision_encoder"),
    _ev("derived", _match(log10_p=-251.2), _match("ref-b", log10_p=-0.5)),
    _ev("independent", _match(log10_p=-0.4)),
    _ev("weak", _match(decisive=False)),
    _ev("skipped", skipped=(Skipped("a ~ b", "hidden sizes differ (64 vs 48) and no anchor aligns them", "v.skip.hidden_sizes",
                                    (("hidden", 64), ("reference_hidden", 48))),
                            Skipped("c ~ d", "hidden sizes differ (64 vs 48) and no anchor aligns them", "v.skip.hidden_sizes",
                                    (("hidden", 64), ("reference_hidden", 48))),
                            Skipped("e ~ f", "fewer than 16 shared tokens", "v.skip.few_tokens"),
                            Skipped("g ~ h", "patch sizes differ", "v.skip.patch_sizes"))),
    _ev("alone", numel=1),
    _ev("fixed", skipped=(Skipped("fixed.table", "not evidence: fixed table (1-D sinusoidal position table)", "v.skip.fixed_table",
                                  (("kind", "sinusoid_1d"),)),
                          Skipped("fixed.t", "not evidence: fixed table (shared by 2 registered references)",
                                  "v.skip.fixed_table_shared", (("references", 2),)),
                          Skipped("fixed.x ~ r", "patch sizes differ", "v.skip.patch_sizes"))),  # not only fixed tables
    _ev("experts", skipped=(
        Skipped("x.experts.w", "not compared: a 3-D tensor of role 'other' that no known layout splits into matrices",
                "v.skip.not_compared", (("ndim", 3), ("role", "other"))),
        Skipped("x.mask_token", "not compared: a 2-D tensor of role 'other' that no decisive statistic covers",
                "v.skip.no_statistic", (("role", "other"),)),
        Skipped("x.pos ~ r:x.pos", "fewer than 16 anchor rows", "v.skip.few_anchors", (("minimum", 16),)),
        Skipped("x.experts.gate_up_proj", "not compared: no axis of the expert tensor [4, 8, 9] has the hidden width 16",
                "v.skip.expert_axes", (("shape", "[4, 8, 9]"), ("hidden", 16))),
        Skipped("x.experts.gate_up_proj", "not compared: the fused gate and up expert tensor has an odd number of units (9)",
                "v.skip.expert_split", (("units", 9),)))),
)


ARCHITECTURE = Architecture(
    "model_type llama, architectures unknown; module map(s) llama, siglip; modules: model (decoder, 4 layers, "
    "123,312 parameters); visual (vision_encoder, 2 layers, 1,234,567 parameters)", "llama", (), ("ref-a",),
    "llama", None, ("llama", "siglip"),
    (v.ArchitectureModule("model", "decoder", 4, 123312), v.ArchitectureModule("visual", "vision_encoder", 2, 1234567)))


def _license(file: str, lic: str, confidence: float = 1.0, obligations=()) -> LicenseFinding:
    return LicenseFinding(file, "card_metadata", lic, confidence, obligations, "license: x")


def results() -> list:
    """One result per branch of every evaluator (the English text and the sentence of each)."""
    out: list = []
    mvs_all = v.module_verdicts(EVERY_MODULE_STATUS, 0.01)
    out += mvs_all
    out += [v.module_verdicts(EVERY_MODULE_STATUS, 0.01, statistic="shared_token_pearson")[1]]
    out += [v.module_verdicts(_facts(_ev("m", _match()), refs=()), 0.01)[0]]
    # weights: no registry, fail, untested, pass, pass with tiny untested modules
    out += [v.evaluate_weights(W, _facts(_ev("m", _match()), refs=()))[0]]
    out += [v.evaluate_weights(W, EVERY_MODULE_STATUS)[0]]
    out += [v.evaluate_weights(W, _facts(_ev("a", _match(log10_p=-0.4)), _ev("b", _match(decisive=False))))[0]]
    out += [v.evaluate_weights(W, _facts(_ev("a", _match(log10_p=-0.4))))[0]]
    out += [v.evaluate_weights(W, _facts(_ev("a", _match(log10_p=-0.4), numel=100000), _ev("b", _match(decisive=False), numel=3)))[0]]
    # no module of the criterion's kinds: not applicable
    out += [v.evaluate_weights(replace(W, modules=("audio_encoder",)), _facts(_ev("a", _match(log10_p=-0.4))))[0]]
    # review (a REVIEW_ONLY statistic alone), a module compared only in part, a module of fixed tables only
    review = _facts(_ev("a", _match(log10_p=-40, statistic="rotation_aligned_row_pearson"), _match("ref-b", log10_p=-0.4)))
    out += [*v.module_verdicts(review, 0.01), v.evaluate_weights(W, review)[0]]
    out += [v.evaluate_lineage(_crit("lineage", LineageParams()), review, v.module_verdicts(review, 0.01))]
    out += [*v.module_verdicts(_facts(_ev("a", _match(log10_p=-0.4, role="down"))), 0.01)]
    fixed = Skipped("a.w", "a fixed table", FIXED_TABLE_KEY)
    out += [*v.module_verdicts(_facts(_ev("a", skipped=(fixed,))), 0.01)]
    # derived share: fail, inconclusive, pass
    share = _crit("derived_share", DerivedShareParams(max_fraction=0.0))
    out += [v.evaluate_derived_share(share, mvs_all)]
    mixed = v.module_verdicts(_facts(_ev("a", _match(log10_p=-0.4)), _ev("b", _match(decisive=False))), 0.01)
    out += [v.evaluate_derived_share(share, mixed), v.evaluate_derived_share(share, mixed[:1])]
    # tokenizer: none, reused, not reused
    tok = _crit("tokenizer", TokenizerParams(), severity="info")
    out += [v.evaluate_tokenizer(tok, _facts())]
    same = TokenizerComparison("ref-a", 1.0, 90, 1.0, 0.0111, None, True)
    other = TokenizerComparison("ref-b", 0.31, 20, 0.02, 3.1e-05, 0.125, False)
    out += [v.evaluate_tokenizer(tok, _facts(tokenizers=(same, other))), v.evaluate_tokenizer(tok, _facts(tokenizers=(other,)))]
    out += [v.evaluate_architecture(_crit("architecture", None, "info"),
                                    _facts(architecture=ARCHITECTURE))]
    # licenses: problems of every kind, unknown inherited, none found, none confident, doubtful, pass
    lic = _crit("license", LicenseParams(deny=("MIT",), allow=("Apache-2.0", "MIT"), deny_third_party_model_licenses=True,
                                         deny_obligations=("field_of_use",)))
    derived = v.module_verdicts(_facts(_ev("visual", _match("ref-a", log10_p=-80)), _ev("lm", _match("ref-b", log10_p=-80))), 0.01)
    notice = (Obligation("notice", "keep the notice"),)
    out += [v.evaluate_license(lic, _facts(licenses=(_license("LICENSE", "MIT", obligations=notice), _license("README.md", "llama3.1")),
                                           reference_licenses={"ref-a": "llama3.1"}), derived)]
    out += [v.evaluate_license(lic, _facts(licenses=(_license("LICENSE", "Apache-2.0"),),
                                           reference_licenses={"ref-a": "Apache-2.0", "ref-b": "some-unknown-license"}), derived)]
    out += [v.evaluate_license(_crit("license", LicenseParams()), _facts(licenses=(_license("LICENSE", "Apache-2.0"),),
                               reference_licenses={"ref-a": "other-license", "ref-b": "some-unknown-license"}), derived)]
    out += [v.evaluate_license(lic, _facts(), ()),
            v.evaluate_license(lic, _facts(licenses=(_license("LICENSE", "unknown", 0.3),)), ()),
            v.evaluate_license(lic, _facts(licenses=(_license("LICENSE", "Apache-2.0"), _license("NOTICE", "unknown", 0.2))), ()),
            v.evaluate_license(lic, _facts(licenses=(_license("LICENSE", "Apache-2.0"),)), ())]
    # lineage: fail (undeclared, third-party ancestor, not detected), warn, pass both ways
    lin = _crit("lineage", LineageParams(on_declared_not_detected="fail"))
    hints = (LineageHint("config.json", "_name_or_path", "ref-a", "x", "name"),)
    out += [v.evaluate_lineage(lin, _facts(lineage=hints, declared_ancestors=("ref-b", "elsewhere/model", "ref-c"),
                                                   refs=("ref-a", "ref-b", "ref-c")), derived)]
    out += [v.evaluate_lineage(_crit("lineage", LineageParams(forbid_third_party_ancestors=False, on_undeclared_derivation="warn")),
                               _facts(declared_ancestors=("ref-a", "ref-b")), derived),
            v.evaluate_lineage(_crit("lineage", LineageParams(forbid_third_party_ancestors=False)),
                               _facts(declared_ancestors=("ref-a", "ref-b"), reference_licenses={"ref-a": "llama3.1"}), derived),
            v.evaluate_lineage(lin, _facts(), v.module_verdicts(_facts(_ev("a", _match(log10_p=-0.4))), 0.01)),
            v.evaluate_lineage(lin, _facts(), ()), v.evaluate_lineage(lin, _facts(refs=()), ())]  # nothing compared
    # disclosure: missing (used, none), incomplete, complete
    disc = _crit("disclosure", DisclosureParams())
    out += [v.evaluate_disclosure(disc, _facts(), derived), v.evaluate_disclosure(disc, _facts(), ())]
    inv = Inventory("THIRD_PARTY.yaml", (Component("ref-a", "base_model"), Component("tok", "tokenizer", "v1", "MIT")))
    out += [v.evaluate_disclosure(disc, _facts(disclosure=inv, declared_ancestors=("org/base",)), derived),
            v.evaluate_disclosure(disc, _facts(disclosure=Inventory("THIRD_PARTY.yaml", inv.components[1:])), ())]
    # waivers: applied (unscoped, scoped), not covering, expired
    failed = v.evaluate_weights(W, EVERY_MODULE_STATUS)[0]
    expires = dt.date(2025, 12, 31)
    out += v.apply_waivers([failed], (Waiver("X1", "the board", "accepted", expires),), TODAY)
    out += v.apply_waivers([failed], (Waiver("X1", "the board", "accepted", expires, module="copied"),
                                      Waiver("X1", "the board", "accepted", expires, module="derived")), TODAY)
    out += v.apply_waivers([failed], (Waiver("X1", "the board", "accepted", expires, reference="ref-a"),), TODAY)
    out += v.apply_waivers([failed], (Waiver("X1", "the board", "accepted", expires, module="copied"),), TODAY)
    out += v.apply_waivers([failed], (Waiver("X1", "the board", "accepted", dt.date(2025, 1, 1)),), TODAY)
    return out


def sentences(rs) -> list[tuple[str, Msg | None]]:
    """(English text, sentence) for every result, its evidence and its nested sentences."""
    out = []
    for r in rs:
        if isinstance(r, v.ModuleVerdict):
            out.append((r.reason, r.reason_msg))
        else:
            out.append((r.message, r.message_msg))
            out += [(e.text, v.Msg(e.text_key, e.text_args) if e.text_key else None) for e in r.evidence]
    return out


def _keys(said: Msg) -> set[str]:
    keys = {said.key}
    for _, arg in said.args:
        for x in (arg if isinstance(arg, tuple) else (arg,)):
            if isinstance(x, Msg):
                keys |= _keys(x)
    return keys


@pytest.fixture(scope="module")
def produced():
    return sentences(results())


def test_every_english_template_reproduces_the_english_text(produced):
    m = messages("en")
    for text, said in produced:
        if said is None:
            continue
        assert m.say(said.as_json()) == text, said.key


def test_every_sentence_key_is_produced_and_checked(produced):
    used = set().union(*(_keys(s) for _, s in produced if s is not None))
    defined = {k for k in en.MESSAGES if k.startswith("v.")}
    assert defined - used == set(), "keys no case produces (add a case above)"
    assert used - defined == set(), "keys the catalogue lacks"


def test_every_sentence_has_a_key(produced):
    assert [text for text, said in produced if said is None] == []


def test_a_free_text_architecture_summary_stays_free_text():
    r = v.evaluate_architecture(_crit("architecture", None, "info"), _facts(architecture=Architecture("model_type llama")))
    assert r.message == "model_type llama" and r.message_msg is None


def test_architecture_summary_without_a_config_says_unknown():
    arch = Architecture("model_type unknown, architectures unknown; module map(s) ; modules: ", modules=())
    said = v.architecture_sentence(arch)
    assert messages("en").say(said.as_json()) == arch.summary
    assert messages("ko").say(said.as_json()).startswith("모델 유형(model_type) 알 수 없음, 아키텍처(architectures) 알 수 없음")


def test_skipped_comparisons_keep_their_english_reason_and_are_written_in_korean():
    mv = v.module_verdicts(EVERY_MODULE_STATUS, 0.01)[4]
    assert mv.status == "inconclusive" and mv.reason == ("no comparison was possible: hidden sizes differ (64 vs 48) and no anchor "
                                                         "aligns them; fewer than 16 shared tokens; patch sizes differ")
    for s in mv.skipped:
        assert messages("en").say(v.Msg(s.key, s.args).as_json()) == s.reason
    assert messages("ko").say(mv.reason_msg.as_json()) == (
        "비교할 수 없었습니다: 은닉 차원이 다르고(64 대 48) 이를 정렬할 기준점이 없습니다; 공유 토큰이 16개 미만입니다; 패치 크기가 다릅니다")
    # a reason given as free text (no key) is passed on as it is
    free = v.module_verdicts(_facts(_ev("m", skipped=(Skipped("a ~ b", "some other reason"),))), 0.01)[0]
    assert free.reason == "no comparison was possible: some other reason"
    assert messages("ko").say(free.reason_msg.as_json()) == "비교할 수 없었습니다: some other reason"


def test_every_key_in_the_source_is_in_both_catalogues():
    source = "\n".join(p.read_text() for p in VERDICTS.glob("*.py"))
    keys = set(re.findall(r"""msg\(\s*["'](v\.[\w.]+)["']""", source)) | set(re.findall(r"""["'](v\.[a-z_]+\.[a-z_]+)["']""", source))
    assert keys and keys <= set(en.MESSAGES) and keys <= set(ko.MESSAGES)


def _fields(text: str) -> dict[str, str]:
    return {name: spec for _, name, spec, _ in string.Formatter().parse(text) if name is not None}


NUMBER_SPECS = {"p", "pct0", "pct1", "pct2", "num2", "num3", "z", "int", "g", "g2", "raw"}


@pytest.mark.parametrize("key", sorted(k for k in en.MESSAGES if k.startswith("v.")))
def test_korean_sentence_has_the_same_placeholders_and_writes_figures_the_same_way(key):
    e, k = _fields(en.MESSAGES[key]), _fields(ko.MESSAGES[key])
    assert set(e) == set(k)
    for name in e:
        if e[name] in NUMBER_SPECS or k[name] in NUMBER_SPECS:
            assert e[name] == k[name], (key, name)


def test_korean_sentences_are_korean(produced):
    m = messages("ko")
    for text, said in produced:
        if said is None or said.key == "v.lin.hint":  # "{file}: {key} = {value}" quotes the submission's files
            continue
        ko_text = m.say(said.as_json())
        assert ko_text != text and re.search(r"[\uac00-\ud7af]", ko_text), said.key


def test_a_figure_without_a_format_is_a_bug():
    with pytest.raises(TypeError, match="needs a format spec"):
        messages("en").say({"key": "v.tok.reused", "args": {"references": 0.5}})


def test_a_weights_criterion_never_passes_on_nothing():
    """No module of its kinds: not applicable; every module untested, however small: inconclusive."""
    none = v.evaluate_weights(replace(W, modules=("audio_encoder",)), _facts(_ev("a", _match(log10_p=-0.4))))[0]
    assert none.status == "not_applicable"
    tiny = v.evaluate_weights(W, _facts(_ev("b", _match(decisive=False), numel=3)))[0]
    assert tiny.status == "inconclusive"
