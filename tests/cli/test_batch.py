"""Batch audits, terminal tables at 80 columns, help texts and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from rich.console import Console

from checker.cli.batch import batch_exit_code
from checker.cli.display import batch_table, verdict_table
from checker.cli.main import main


@pytest.fixture(scope="module")
def subs(zoo):
    return {"composite": zoo.save("batch-composite", zoo.ft_vit, zoo.ind_lm),
            "independent": zoo.save("batch-independent", zoo.ind_vit, zoo.ind_lm)}


def test_batch_writes_folders_index_html_csv_and_lists_the_unreadable(zoo, subs, tmp_path, capsys):
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"garbage")
    out = tmp_path / "reports"
    code = main(["audit", str(subs["independent"]), str(bad), str(subs["composite"]), "--registry", str(zoo.registry),
                 "--out", str(out), "--format", "json"])
    assert code == 1  # a failed submission outranks the unreadable one (which alone would give 2)
    assert (out / "batch-composite" / "report.json").is_file() and (out / "batch-independent" / "report.json").is_file()
    rows = list(csv.DictReader(io.StringIO((out / "index.csv").read_text())))
    assert [r["verdict"] for r in rows][-1] == "error" and rows[-1]["submission"] == str(bad)
    assert "not a readable safetensors file" in rows[-1]["error"]
    comp = next(r for r in rows if r["submission"] == "batch-composite")
    assert comp["verdict"] == "fail" and "W1" in comp["failed_criteria"].split() and comp["report"] == "batch-composite/report.json"
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    html = (out / "index.html").read_text()
    assert "batch-composite/report.json" in html and "ERROR" in html and "W1" in html
    shown = capsys.readouterr().out
    assert "3 submissions" in shown and "index.csv" in shown


def test_a_batch_where_nothing_could_be_audited_exits_2_with_an_index(zoo, tmp_path):
    bad = []
    for name in ("broken-a", "broken-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"garbage")
        bad.append(str(tmp_path / name))
    code = main(["audit", *bad, "--registry", str(zoo.registry), "--out", str(tmp_path / "o"), "--format", "json"])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "index.csv").read_text())))
    assert code == 2 and [r["verdict"] for r in rows] == ["error", "error"]


@pytest.mark.parametrize("verdicts,code", [(["pass", "error"], 2), (["fail", "error"], 1), (["inconclusive", "pass"], 3), (["pass"], 0)])
def test_batch_exit_code_is_the_worst_outcome(verdicts, code):
    assert int(batch_exit_code(verdicts)) == code


def test_terminal_tables_fit_80_columns_and_never_cut_a_number(zoo, subs, tmp_path):
    main(["audit", str(subs["composite"]), "--registry", str(zoo.registry), "--out", str(tmp_path), "--format", "json"])
    report = json.loads((tmp_path / "report.json").read_text())
    con = Console(width=80, record=True, file=io.StringIO())
    verdict_table(report, "en", con)
    batch_table([{"rank": 1, "id": "a-very-long-submission-name/with-a-path", "verdict": "fail", "derived_param_fraction": 0.2735,
                  "failed": ["W1", "W2", "L2"], "href": "x", "error": None}], "sovereign-ai-2025", "en", con)
    text = con.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    visual = next(m for m in report["modules"] if m["name"] == "visual")
    best = next(x for x in visual["matches"] if x["reference_module"] == "visual")
    from checker.report.fmt import fmt_p

    assert fmt_p(best["p_value_corrected"], best["log10_p_value_corrected"]) in text and "27.35%" in text
    assert "exit code" not in text


def test_audit_help_says_what_each_argument_accepts_and_lists_exit_code_2(capsys):
    assert main(["audit", "--help"]) == 0
    out = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
    assert "owner/name@revision" in out and "weights file" in out and "model folder" in out
    assert "2 usage or input error" in out and "--lang" in out


def test_unknown_command_suggestion_is_printed_once(capsys):
    assert main(["audti"]) == 2
    err = capsys.readouterr().err
    assert err.count("Did you mean 'audit'?") == 1 and err.count("\n") == 1


def test_registry_add_refuses_an_unknown_license_id(zoo, subs, tmp_path, capsys):
    code = main(["registry", "add", str(subs["independent"]), "--registry", str(tmp_path / "reg"), "--license", "llama-3.1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("fromscratch: --license: unknown license id 'llama-3.1'; close catalogue ids: llama3.1")
    assert not (tmp_path / "reg").exists()


def test_korean_terminal_and_unknown_language(zoo, subs, tmp_path, capsys):
    code = main(["audit", str(subs["composite"]), "--registry", str(zoo.registry), "--out", str(tmp_path), "--format", "json,md",
                 "--lang", "ko"])
    assert code == 1
    assert "판정: 불합격" in capsys.readouterr().out and "불합격" in (tmp_path / "report.md").read_text()
    assert main(["audit", str(subs["composite"]), "--registry", str(zoo.registry), "--lang", "fr"]) == 2
    assert capsys.readouterr().err.strip() == "fromscratch: --lang: unknown language 'fr' (choose from en, ko)"
