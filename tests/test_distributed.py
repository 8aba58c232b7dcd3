"""Ray: the reference comparisons as tasks on a local 2-CPU Ray give the local audit's results."""

from __future__ import annotations

import sys

import pytest

from checker.audit import audit
from checker.distributed import merge_evidence, shard_references
from checker.errors import CheckerError
from checker.references.registry import add_reference
from checker.rules import load_pack


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for the module (the audit reuses an open connection)."""
    try:
        import ray
    except ImportError as exc:
        pytest.skip(f"Ray cannot start here: ray is not installed ({exc}); pip install 'fromscratch[ray]'")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    except Exception as exc:  # a sandbox without shared memory or sockets, for example
        pytest.skip(f"Ray cannot start here: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def two_references(zoo, tmp_path_factory):
    """A registry of two tiny models (the trained reference and an independent one) and a
    fine-tune of the first: one Ray task per reference."""
    reg = tmp_path_factory.mktemp("ray-registry")
    add_reference(str(zoo.root / "foreign-vlm"), reg, ref_id="foreign-vlm", license="llama3.1")
    other = zoo.save("ray-independent", zoo.ind_vit, zoo.ind_lm)
    add_reference(str(other), reg, ref_id="independent", license="apache-2.0")
    return reg, zoo.save("ray-submission", zoo.ft_vit, zoo.ind_lm)


def _p_values(result):
    return {ev.module.name: [(m.reference, m.reference_module, m.log10_p) for m in ev.matches] for ev in result.facts.modules}


def test_ray_audit_equals_local_audit(ray_cluster, two_references):
    registry, submission = two_references
    pack = load_pack()
    local = audit(str(submission), registry, pack)
    remote = audit(str(submission), registry, pack, use_ray=True)
    assert remote.verdict == local.verdict
    assert [(m.name, m.status) for m in remote.modules] == [(m.name, m.status) for m in local.modules]
    assert {m.name: m.status for m in remote.modules}["visual"] == "derived"  # the case is not trivially all-independent
    lp, rp = _p_values(local), _p_values(remote)
    assert {k: [x[:2] for x in v] for k, v in rp.items()} == {k: [x[:2] for x in v] for k, v in lp.items()}
    for name in lp:  # one torch thread per task against all cores locally: the sums may differ in the last bits
        assert [x[2] for x in rp[name]] == pytest.approx([x[2] for x in lp[name]], rel=1e-6, abs=1e-9)
    assert remote.submission.files == local.submission.files
    assert remote.submission.audited == local.submission.audited
    assert [(c.id, c.status) for c in remote.criteria] == [(c.id, c.status) for c in local.criteria]


def test_shards_one_reference_each_and_one_task_without_references():
    assert shard_references(["a", "b", "c"]) == [("a",), ("b",), ("c",)]
    assert shard_references(["a", "b", "c"], per_shard=2) == [("a", "b"), ("c",)]
    assert shard_references([]) == [()]
    assert merge_evidence([]) == ()


def test_ray_task_errors_are_one_line(ray_cluster, two_references, tmp_path):
    registry, submission = two_references
    from checker.distributed import compare_distributed
    with pytest.raises(CheckerError) as err:
        compare_distributed(submission, registry, ["no-such-reference"], None, "cpu")
    assert str(err.value) == f"{registry.resolve()}: reference 'no-such-reference' is not registered"


def test_missing_extra_is_a_usage_error(zoo, two_references, monkeypatch):
    registry, submission = two_references
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(CheckerError) as err:
        audit(str(submission), registry, load_pack(), use_ray=True)
    assert str(err.value) == "--ray: needs the optional extra: pip install 'fromscratch[ray]'"


def test_cli_ray_local(ray_cluster, two_references, tmp_path):
    import json

    from checker.cli.main import main
    registry, submission = two_references
    code = main(["audit", str(submission), "--registry", str(registry), "--ray", "local", "--out", str(tmp_path),
                 "--format", "json"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == report["exit_code"] and report["verdict"] == audit(str(submission), registry, load_pack()).verdict
    assert {m["name"]: m["status"] for m in report["modules"]}["visual"] == "derived"
