"""The command line: exit codes, one-line errors, no partial reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from checker.cli.main import main
from checker.yamlio import schema

FIXTURES = Path(__file__).parents[1] / "fixtures" / "packs"


GOLDEN_APACHE = Path(__file__).parents[1] / "fixtures" / "golden" / "sovereign-ai-2025" / "apache-original"


@pytest.fixture(scope="module")
def models(zoo):
    independent = zoo.save("cli-independent", zoo.ind_vit, zoo.ind_lm)
    for name in ("LICENSE", "README.md", "THIRD_PARTY.yaml"):  # an Apache-2.0 original with nothing to disclose
        (independent / name).write_bytes((GOLDEN_APACHE / name).read_bytes())
    return {
        "composite": zoo.save("cli-composite", zoo.ft_vit, zoo.ind_lm),
        "independent": independent,
        "ft": zoo.save("cli-ft", zoo.ft_lm),
    }


def test_audit_fail_writes_every_format_and_exits_1(zoo, models, tmp_path, capsys):
    code = main(["audit", str(models["composite"]), "--registry", str(zoo.registry), "--out", str(tmp_path), "--format", "json,html,md"])
    assert code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, schema("report.schema.json"))
    assert report["verdict"] == "fail" and report["exit_code"] == 1
    status = {m["name"]: m["status"] for m in report["modules"]}
    assert status["visual"] == "derived" and status["model"] == "independent"
    visual = next(m for m in report["modules"] if m["name"] == "visual")
    best = next(x for x in visual["matches"] if x["reference_module"] == "visual")
    assert best["layer_map"] == {"0": 0, "1": 1, "2": 2} and best["p_value"] < 1e-6
    assert (tmp_path / "report.html").read_text().count("derived") >= 1
    assert "| visual | vision encoder |" in (tmp_path / "report.md").read_text()
    assert "verdict: FAIL" in capsys.readouterr().out


def test_audit_pass_exits_0(zoo, models, tmp_path):
    assert main(["audit", str(models["independent"]), "--registry", str(zoo.registry), "--out", str(tmp_path), "--format", "json"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "pass"


def test_empty_registry_is_inconclusive_exit_3(models, tmp_path):
    (tmp_path / "empty-registry").mkdir()
    code = main(["audit", str(models["independent"]), "--registry", str(tmp_path / "empty-registry"), "--out", str(tmp_path / "o"), "--format", "json"])
    assert code == 3
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["verdict"] == "inconclusive"
    status = {c["id"]: c["status"] for c in report["criteria"]}
    assert (status["W1"], status["W2"], status["L2"]) == ("inconclusive",) * 3  # nothing compared is never a pass


def test_several_submissions_get_an_index_and_the_worst_exit_code(zoo, models, tmp_path):
    code = main(["audit", str(models["independent"]), str(models["composite"]), "--registry", str(zoo.registry), "--out", str(tmp_path)])
    assert code == 1
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "cli-composite" / "report.json").is_file() and (tmp_path / "cli-independent" / "report.json").is_file()


@pytest.mark.parametrize("args,expected", [
    (["--rules", str(FIXTURES / "bad_kind.yaml")], f"fromscratch: {FIXTURES / 'bad_kind.yaml'}:10: 'weight' is not one of"),
    (["--format", "docx"], "fromscratch: --format: unknown format 'docx' (choose from json, html, md, pdf, cyclonedx)"),
    (["--registry", "/nonexistent/registry"], "fromscratch: /nonexistent/registry: no such registry folder"),
])
def test_bad_input_is_one_line_exit_2_and_no_report(zoo, models, tmp_path, capsys, args, expected):
    base = ["audit", str(models["independent"]), "--registry", str(zoo.registry), "--out", str(tmp_path / "out")]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(expected) and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_corrupt_submission_exit_2_and_no_partial_report(zoo, models, tmp_path, capsys):
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"garbage")
    code = main(["audit", str(bad), "--registry", str(zoo.registry), "--out", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"fromscratch: {bad / 'model.safetensors'}: not a readable safetensors file")
    assert not (tmp_path / "out").exists()


def test_rules_validate(capsys):
    assert main(["rules", "validate", "sovereign-ai-2025"]) == 0
    assert "valid rule pack sovereign-ai-2025" in capsys.readouterr().out
    assert main(["rules", "validate", str(FIXTURES / "bad_duplicate_id.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"fromscratch: {FIXTURES / 'bad_duplicate_id.yaml'}:12: duplicate criterion id 'W1' (first at line 8) (at $.criteria[1].id)"
    assert main(["rules", "list"]) == 0


def test_registry_add_and_list(zoo, models, tmp_path, capsys):
    reg = tmp_path / "reg"
    assert main(["registry", "add", str(models["ft"]), "--registry", str(reg), "--id", "acme/ft", "--license", "MIT"]) == 0
    entry = json.loads((reg / "acme__ft" / "entry.json").read_text())
    jsonschema.validate(entry, schema("registry-entry.schema.json"))
    assert entry["license"] == "MIT" and entry["files"][0]["path"] == "model.safetensors" and len(entry["files"][0]["sha256"]) == 64
    assert main(["registry", "add", str(models["ft"]), "--registry", str(reg), "--id", "acme/ft"]) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["registry", "list", "--registry", str(reg)]) == 0
    assert "acme/ft" in capsys.readouterr().out


def test_registry_add_from_hub_respects_offline_mode(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    assert main(["registry", "add", "example-org/not-cached", "--registry", str(tmp_path / "reg")]) == 2
    assert capsys.readouterr().err.startswith("fromscratch: example-org/not-cached: not in the local Hugging Face cache")


def test_compare_json_shows_the_layer_matrix_and_map(zoo, models, capsys):
    ref = zoo.root / "foreign-vlm"
    assert main(["compare", str(models["ft"]), str(ref), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = next(m for m in out["modules"] if m["name"] == "model")
    best = next(x for x in model["matches"] if x["reference_module"] == "model")
    assert best["layer_map"] == {"0": 0, "1": 1, "2": 2, "3": 3}
    grid = best["layer_matrix"]
    assert grid["sub_layers"] == [0, 1, 2, 3] and len(grid["z"]) == 4
    assert all(grid["z"][i][i] == max(grid["z"][i]) for i in range(4))
    assert main(["compare", str(models["ft"]), str(ref)]) == 0
    assert "layer map: 0→0, 1→1, 2→2, 3→3" in capsys.readouterr().out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "checker", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("fromscratch ")


def test_registry_add_from_the_offline_hub_cache_pins_the_revision(zoo, models, tmp_path, capsys, monkeypatch):
    """A repo already in the Hugging Face cache is registered with HF_HUB_OFFLINE=1, at its commit."""
    import shutil

    sha = "0123456789abcdef0123456789abcdef01234567"
    hub = tmp_path / "hf" / "hub"
    repo = hub / "models--example-org--tiny-llm"
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copy(models["ft"] / name, snap / name)
    (snap / "README.md").write_text("---\nlicense: llama3.1\n---\n# tiny\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as hf_constants  # read once at import: point it at this cache too

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))
    reg = tmp_path / "reg"
    assert main(["registry", "add", "example-org/tiny-llm", "--registry", str(reg)]) == 0, capsys.readouterr().err
    entry = json.loads((reg / "example-org__tiny-llm" / "entry.json").read_text())
    assert entry["source_type"] == "huggingface" and entry["revision"] == sha
    assert entry["license"] == "llama3.1" and entry["publisher"] == "example-org"


def test_a_tampered_fingerprint_is_refused(zoo, models, tmp_path, capsys):
    import shutil

    reg = tmp_path / "reg"
    shutil.copytree(zoo.registry, reg)
    fp = reg / "foreign-vlm" / "fingerprint.json"
    fp.write_text(fp.read_text().replace('"parameters":', '"parameters" :'))
    assert main(["audit", str(models["independent"]), "--registry", str(reg), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == (f"fromscratch: {fp}: does not match the digest recorded at registration "
                                               "(the fingerprint was modified); re-add the reference")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("array", ["gram", "index_rows"])
def test_a_tampered_fingerprint_array_is_refused_when_read(zoo, models, tmp_path, capsys, array):
    """The arrays file is checked array by array as the audit reads it (not hashed whole at every
    audit): a changed byte in an array the audit reads still stops it, in one line, with no report.
    Every screen sketch is read (and checked) as the print loads; the index test's rows, as the
    engine compares the layer."""
    import shutil
    import struct

    reg = tmp_path / "reg"
    shutil.copytree(zoo.registry, reg)
    arrays = reg / "foreign-vlm" / "fingerprint.safetensors"
    data = bytearray(arrays.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    key = next(k for k in header if k.endswith(f"layers.0.mlp.up_proj.weight|{array}")
               or (array == "gram" and k.endswith("|gram")))
    data[8 + n + header[key]["data_offsets"][0]] ^= 0x01
    arrays.write_bytes(bytes(data))
    # --no-cache: evidence cached from an earlier audit of the same files and registered fingerprints
    # would read no arrays at all (the session shares one cache)
    assert main(["audit", str(models["independent"]), "--registry", str(reg), "--out", str(tmp_path / "o"),
                 "--no-cache"]) == 2
    assert capsys.readouterr().err.strip() == (f"fromscratch: {arrays}: array {key!r} does not match the digest recorded at "
                                               "registration (the fingerprint was modified); re-add the reference")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,expected", [
    (["audit"], "fromscratch: Missing argument 'SUBMISSIONS...'. (see 'fromscratch audit --help')"),
    (["frobnicate"], "fromscratch: No such command 'frobnicate'. (see 'fromscratch --help')"),
])
def test_usage_errors_are_one_line(capsys, argv, expected):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == expected


def test_demo_runs_with_no_input(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["verdict"] == "fail" and (tmp_path / "demo" / "report.html").is_file() and (tmp_path / "demo" / "report.md").is_file()
    assert "demo result as expected" in capsys.readouterr().out


def test_hub_submission_from_the_offline_cache_at_a_pinned_revision(zoo, models, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants as hf_constants

    sha = "fedcba9876543210fedcba9876543210fedcba98"
    hub = tmp_path / "hf" / "hub"
    snap = hub / "models--our-lab--sovereign-lm" / "snapshots" / sha
    snap.mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json", "LICENSE", "README.md", "THIRD_PARTY.yaml"):
        shutil.copy(models["independent"] / name, snap / name)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))
    out = tmp_path / "out"
    code = main(["audit", f"our-lab/sovereign-lm@{sha}", "--registry", str(zoo.registry), "--out", str(out), "--format", "json"])
    report = json.loads((out / "report.json").read_text())
    assert report["submission"]["id"] == "our-lab/sovereign-lm" and report["submission"]["revision"] == sha
    assert report["submission"]["source_type"] == "huggingface" and code == 0


def test_out_that_is_a_file_is_an_input_error(zoo, models, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    base = ["audit", str(models["independent"]), "--registry", str(zoo.registry), "--format", "json", "--out"]
    assert main(base + [str(taken)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(base + [str(taken / "sub")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"fromscratch: {taken / 'sub'}: cannot create the output folder")
