"""Fail closed: a criterion that compared nothing never passes, debug output never changes an
exit code, and ``compare`` reports an alignment as found only when the engine would adopt it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checker import synth
from checker import verdicts as v
from checker.audit import audit
from checker.cli.main import main
from checker.metrics.anchors import ANCHOR_MIN_Z
from checker.metrics.interface import AlignmentSummary, Match, ModuleEvidence, Skipped
from checker.modules import Module, TensorRole
from checker.report.json_report import build_report
from checker.rules import Criterion, DerivedShareParams, LineageParams, WeightsParams, load_pack


def _ev(name: str, *matches, skipped=()) -> ModuleEvidence:
    mod = Module(name, "decoder", "llama", (TensorRole(f"{name}.w", (1000, 1), name, "decoder", 0, "up", 0, True),))
    return ModuleEvidence(mod, matches, skipped)


def _match(log10_p: float) -> Match:
    return Match("ref-a", "model", "decoder", "heldout_row_pearson", 0.01, 0.3, log10_p, log10_p, 4, (), 0.0,
                 AlignmentSummary("identity", False, 0, 8, None, ()), (), True)


def _facts(*evidence, refs=("ref-a",)) -> v.Facts:
    return v.Facts(modules=evidence, total_parameters=sum(e.module.parameters for e in evidence), reference_ids=refs)


LINEAGE = Criterion("L2", "lineage", "lineage", "critical", LineageParams())
SKIPPED = Skipped("model.w ~ ref-a:model.w", "hidden sizes differ (64 vs 48) and no anchor aligns them", "v.skip.hidden_sizes",
                  (("hidden", 64), ("reference_hidden", 48)))


@pytest.mark.parametrize("facts,why", [
    (_facts(_ev("model", _match(-0.3)), refs=()), "no reference models are registered"),
    (_facts(_ev("model", skipped=(SKIPPED,))), "no module's weights could be compared with a registered reference"),
    (_facts(_ev("model")), "no module's weights could be compared with a registered reference"),  # no compatible reference module
    (_facts(), "no module's weights could be compared with a registered reference"),
])
def test_lineage_with_nothing_compared_is_inconclusive_never_pass(facts, why):
    r = v.evaluate_lineage(LINEAGE, facts, v.module_verdicts(facts, 1e-6))
    assert r.status == "inconclusive"
    assert r.message.startswith("nothing was compared, so no derivation can be ruled out") and why in r.message


def test_lineage_passes_once_a_module_was_compared():
    facts = _facts(_ev("model", _match(-0.3)))
    r = v.evaluate_lineage(LINEAGE, facts, v.module_verdicts(facts, 1e-6))
    assert (r.status, r.message) == ("pass", "no ancestor declared and no derivation detected")


@pytest.mark.parametrize("count_inconclusive", [False, True])
def test_weights_and_derived_share_with_an_empty_registry_never_pass(count_inconclusive):
    facts = _facts(_ev("model", _match(-0.3)), refs=())
    w = v.evaluate_weights(Criterion("W1", "w", "weights", "critical", WeightsParams(significance=1e-6)), facts)[0]
    share = Criterion("W2", "s", "derived_share", "critical", DerivedShareParams(max_fraction=0.0, count_inconclusive=count_inconclusive))
    s = v.evaluate_derived_share(share, v.module_verdicts(facts, 1e-6))
    assert w.status == "inconclusive"
    assert s.status == ("fail" if count_inconclusive else "inconclusive")


# -- debug output never changes an exit code ------------------------------------------------------


@pytest.mark.parametrize("debug", [None, "1"])
def test_input_error_exits_2_with_and_without_debug(monkeypatch, capsys, tmp_path, debug):
    if debug:
        monkeypatch.setenv("FROMSCRATCH_DEBUG", debug)
    else:
        monkeypatch.delenv("FROMSCRATCH_DEBUG", raising=False)
    (tmp_path / "sub").mkdir()
    assert main(["audit", str(tmp_path / "sub"), "--registry", "/nonexistent/registry", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"fromscratch: {tmp_path / 'sub'}: no weights found" in err
    assert ("Traceback" in err) == bool(debug)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("debug", [None, "1"])
def test_internal_error_exits_2_with_and_without_debug(monkeypatch, capsys, debug):
    if debug:
        monkeypatch.setenv("FROMSCRATCH_DEBUG", debug)
    else:
        monkeypatch.delenv("FROMSCRATCH_DEBUG", raising=False)

    def broken(*_a, **_k):
        raise RuntimeError("a bug")

    monkeypatch.setattr("checker.cli.rules_cmd.shipped_packs", broken)
    assert main(["rules", "list"]) == 2
    err = capsys.readouterr().err
    assert "fromscratch: internal error: RuntimeError: a bug" in err
    assert ("Traceback" in err) == bool(debug)


def test_the_process_exit_status_is_2_under_debug_too(tmp_path):
    """The console script itself (``sys.exit(main())``), where a re-raised exception used to exit 1."""
    out = subprocess.run([sys.executable, "-m", "checker", "registry", "list", "--registry", str(tmp_path / "missing")],
                         capture_output=True, text=True, env={**os.environ, "FROMSCRATCH_DEBUG": "1"})
    assert out.returncode == 2, out.stderr
    assert "Traceback" in out.stderr and out.stderr.rstrip().endswith("no such registry folder")


# -- compare: an alignment is found only when it would be adopted ---------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two independently initialised and trained tiny LMs of different widths (the engine must fit
    an alignment to compare them at all), and a hidden-permuted copy of the first."""
    root = tmp_path_factory.mktemp("fail-closed-compare")
    text = synth.stdlib_text()
    vocab = synth.char_vocab(text)
    a = synth.new_lm(synth.LMConfig(vocab=len(vocab)), 0)
    b = synth.new_lm(synth.LMConfig(vocab=len(vocab), hidden=96, ffn=192), 1)
    synth.train_lm(a, text, vocab, 60, seed=0)
    synth.train_lm(b, text, vocab, 60, seed=1)
    subject = synth.Subject(synth.state(a), vocab, synth.LMConfig(vocab=len(vocab)), synth.ViTConfig())
    permuted = synth.permute_hidden(subject)
    return {"a": synth.save_checkpoint(root / "a", synth.state(a), vocab),
            "b": synth.save_checkpoint(root / "b", synth.state(b), vocab),
            "permuted": synth.save_checkpoint(root / "permuted", permuted.state, vocab)}


def _alignments(report: dict) -> list[dict]:
    return [x["recovered_alignment"]["hidden"] for mod in report["modules"] for x in mod["matches"]]


def test_compare_of_unrelated_models_adopts_no_alignment(pair, capsys):
    assert main(["compare", str(pair["a"]), str(pair["b"]), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    hidden = [h for h in _alignments(report) if h["source"] != "identity"]
    assert hidden, "the widths differ: the engine fits an alignment from the shared tokens"
    for h in hidden:
        assert h["anchor_z"] < ANCHOR_MIN_Z and h["adopted"] is False
        assert h["permuted"] is False and h["dims_moved"] == 0 and h["sign_flips"] == 0
    assert report["min_anchor_z"] == ANCHOR_MIN_Z
    assert main(["compare", str(pair["a"]), str(pair["b"])]) == 0
    out = capsys.readouterr().out
    assert "hidden permutation found" not in out
    assert "alignment: none adopted (best anchors model.embed_tokens.weight ~ model.embed_tokens.weight" in out
    assert f"below the adoption threshold {ANCHOR_MIN_Z:.1f})" in out


def test_compare_of_a_permuted_copy_reports_the_adopted_permutation(pair, capsys):
    assert main(["compare", str(pair["permuted"]), str(pair["a"]), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model = next(m for m in report["modules"] if m["name"] == "model")
    h = next(x for x in model["matches"] if x["reference_module"] == "model")["recovered_alignment"]["hidden"]
    assert h["adopted"] is True and h["anchor_z"] >= ANCHOR_MIN_Z and h["permuted"] is True and h["dims_moved"] > 32
    assert main(["compare", str(pair["permuted"]), str(pair["a"])]) == 0
    assert "hidden permutation found" in capsys.readouterr().out


# -- the LayerNorm trap with the reference's own norm weights -------------------------------------


def test_reference_norm_weights_on_an_independent_model_decide_nothing(zoo):
    """An independent model carrying the reference's exact norm gains (every matrix its own): the
    norm vectors are byte-identical copies, their raw cosine and Pearson are 1, yet they are weak
    evidence only (a few hundred near-constant parameters): no module is derived or identical, and
    the identical share stays what it is, far below a module."""
    ref = {**synth.state(zoo.ref_vit), **synth.state(zoo.ref_lm)}
    norms = {k: v.clone() for k, v in ref.items() if "norm" in k}
    assert len(norms) >= 12
    folder = zoo.save("independent-with-reference-norms", zoo.ind_vit, zoo.ind_lm, tensors=norms)
    result = audit(str(folder), zoo.registry, load_pack())
    report = build_report(result)
    status = {m["name"]: m["status"] for m in report["modules"]}
    assert set(status.values()) == {"independent"}, status
    crit = {c["id"]: c["status"] for c in report["criteria"]}
    assert crit["W1"] == crit["W2"] == "pass" and report["derived_param_fraction"] == 0.0
    model = next(m for m in report["modules"] if m["name"] == "model")
    vs_ref = next(x for x in model["matches"] if x["reference"] == "foreign-vlm" and x["reference_module"] == "model")
    weak = [w for w in vs_ref["weak_evidence"] if w["role"] == "norm"]
    exact = [w for w in weak if w["pearson"] > 0.999]  # each copied vector against its own original
    assert {w["tensor"] for w in exact} == {k for k in norms if k.startswith("model.")}
    assert min(w["raw_cosine"] for w in exact) > 0.999
    assert not any(w["decisive"] for w in weak)
    # the copied vectors may be listed as identical tensors, but as the small share they are
    share = sum(v.numel() for k, v in norms.items() if k.startswith("model.")) / model["parameters"]
    assert vs_ref["identical_fraction"] <= share + 1e-9 and share < 0.01


def test_the_report_states_the_null_and_adopts_no_alignment_between_unrelated_models(pair, tmp_path):
    """The audit report of an unrelated model of another width: its null hypothesis said plainly in
    every format, and no permutation 'recovered' from anchors the engine did not adopt."""
    from checker.references.registry import add_reference

    add_reference(str(pair["a"]), tmp_path / "reg", ref_id="ref-a", license="Apache-2.0")
    main(["audit", str(pair["b"]), "--registry", str(tmp_path / "reg"), "--out", str(tmp_path / "o"), "--format", "json,html,md"])
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    null = report["null_hypothesis"]
    assert null["hypothesis"] == "independent initialisation and training" and null["text_key"] == "report.null_hypothesis"
    assert "started from a reference's initial weights (the same random seed) therefore counts as derived" in null["text"]
    for name in ("report.html", "report.md"):
        text = (tmp_path / "o" / name).read_text()
        assert null["text"] in text.replace("&#39;", "'").replace("\\'", "'"), name
        assert "permutation recovered" not in text, name
    assert "no alignment adopted: the best anchors" in (tmp_path / "o" / "report.html").read_text()  # (Markdown: flagged modules only)


@pytest.mark.parametrize("error", ["host", "device"])
def test_running_out_of_memory_is_one_line_that_names_the_way_out(monkeypatch, capsys, tmp_path, error):
    """A matrix too large for the GPU (or the host) ends the audit with one line, exit 2 and no
    report, not an internal error: the evaluator can rerun with --device cpu."""
    import torch

    def exhausted(*_a, **_k):
        if error == "host":
            raise MemoryError()
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.74 GiB")

    monkeypatch.delenv("FROMSCRATCH_DEBUG", raising=False)
    monkeypatch.setattr("checker.cli.rules_cmd.shipped_packs", exhausted)
    assert main(["rules", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fromscratch: out of memory" in err and "--device cpu" in err
    assert "internal error" not in err and "Traceback" not in err
