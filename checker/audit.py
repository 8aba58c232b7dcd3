"""The audit engine: submission + registry + rule pack -> AuditResult.

Data flows one way: weights reader -> module map -> metric engine -> evidence
-> verdicts. Nothing here prints or exits; errors are raised as CheckerError.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from checker import __version__
from checker.errors import CheckerError, RulePackError, ScanError, WeightsError
from checker.metrics.engine import compare
from checker.metrics.interface import ModuleEvidence
from checker.references.fingerprint import build_fingerprint
from checker.modules import Module, split_modules
from checker.references.registry import RegistryEntry, fetch_from_hub, is_hub_id, load_references
from checker.rules import MAX_UNCOMPARED, RulePack, Waiver
from checker.scanners.disclosure import INVENTORY_FILES, read_inventory
from checker.scanners.licenses import scan_licenses
from checker.scanners.lineage import declared_ancestors, scan_lineage
from checker.yamlio import load_json
from checker.scanners.tokenizer import TokenizerComparison, compare_vocabularies, model_vocabulary
from checker.verdicts import (
    Architecture, CriterionResult, Facts, ModuleVerdict, apply_waivers, derived_fraction, derived_module_fraction, evaluate_architecture,
    evaluate_derived_share, evaluate_disclosure, evaluate_license, evaluate_lineage, evaluate_tokenizer,
    evaluate_weights, module_verdicts, overall,
)
from checker.weights import open_checkpoint
from checker.weights.common import sha256_file
from checker.weights.interface import WeightFile
from checker.weights.stream import CheckpointStream
from checker.cache import EvidenceCache


@dataclass(frozen=True)
class SubmissionInfo:
    id: str
    path: str
    source_type: str  # local | huggingface
    revision: str | None
    files: tuple[WeightFile, ...]
    parameters: int
    audited: tuple[str, ...] = ()  # the weight files whose tensors were audited

@dataclass(frozen=True)
class AuditResult:
    submission: SubmissionInfo
    pack: RulePack
    references: tuple[RegistryEntry, ...]
    verdict: str
    derived_param_fraction: float  # parameters tied to a reference layer by layer / all (W2's figure)
    modules: tuple[ModuleVerdict, ...]
    criteria: tuple[CriterionResult, ...]
    facts: Facts
    created: str
    tool_version: str = __version__
    derived_module_fraction: float = 0.0  # parameters in derived or identical modules, each counted whole / all


def _located(folder: Path, work):
    """Run ``work``; a weights error naming a file inside the submission names the submission too
    (with several submissions, "model.safetensors: ..." alone would not say whose)."""
    try:
        return work()
    except WeightsError as exc:
        root = folder if folder.is_dir() else folder.parent
        if Path(exc.subject).is_absolute() or exc.subject.startswith(str(root)):
            raise
        raise WeightsError(str(root / exc.subject), exc.reason) from None


def _inventory_files(pack: RulePack) -> tuple[str, ...]:
    """Where the pack's disclosure criterion looks for the third-party inventory."""
    for c in pack.criteria:
        if c.kind == "disclosure":
            return c.params.files
    return INVENTORY_FILES + ("README.md",)


def resolve_submission(spec: str) -> tuple[Path, str, str | None, str]:
    """(folder, source type, revision, id) for a local folder or a Hugging Face repo id."""
    p = Path(spec)
    if p.exists():
        return p, "local", None, p.resolve().name
    repo, _, wanted = spec.partition("@")  # owner/name@revision pins a Hub submission
    if is_hub_id(repo):
        folder, rev = fetch_from_hub(repo, wanted or None)
        return folder, "huggingface", rev, repo
    raise WeightsError(spec, "no such folder, and not a Hugging Face repo id (owner/name or owner/name@revision)")


def submission_files(folder: Path, audited: tuple[WeightFile, ...]) -> tuple[WeightFile, ...]:
    """sha256 of every file the submission ships (what the evaluator signs for).

    The weight files the reader audited are always listed (hidden or not); other
    files under hidden folders (.git, caches) are left out.
    """
    root = folder if folder.is_dir() else folder.parent
    seen = {f.path for f in audited}
    paths = [] if folder.is_file() else sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    out = list(audited)
    for p in paths:
        rel = str(p.relative_to(root))
        if rel in seen:
            continue
        try:
            out.append(WeightFile(rel, sha256_file(p), p.stat().st_size))
        except OSError as exc:
            raise ScanError(str(p), f"cannot read ({exc.strerror or exc})") from None
    return tuple(sorted(out, key=lambda f: f.path))


def architecture_facts(folder: Path, modules: tuple[Module, ...], refs) -> Architecture:
    cfg_path = folder / "config.json" if folder.is_dir() else None
    cfg = load_json(cfg_path, ScanError) if cfg_path is not None and cfg_path.is_file() else {}
    parts = [f"{m.name} ({m.kind}, {len(m.layers)} layers, {m.parameters:,} parameters)" for m in modules]
    families = sorted({m.family for m in modules})
    summary = (f"model_type {cfg.get('model_type', 'unknown')!s}, architectures {cfg.get('architectures', 'unknown')!s}; "
               f"module map(s) {', '.join(families)}; modules: {'; '.join(parts)}")
    shapes = sorted((t.name, t.shape) for m in modules for t in m.tensors)
    same = tuple(e.id for e, fp in refs if sorted((t.role.name, t.role.shape) for t in fp.tensors) == shapes)
    archs = cfg.get("architectures")
    from checker.verdicts import ArchitectureModule
    written = {k: str(cfg[k]) if k in cfg else None for k in ("model_type", "architectures")}  # as the summary writes them
    return Architecture(summary, cfg.get("model_type") if isinstance(cfg.get("model_type"), str) else None,
                        tuple(str(a) for a in archs) if isinstance(archs, list) else (), same,
                        written["model_type"], written["architectures"], tuple(families),
                        tuple(ArchitectureModule(m.name, m.kind, len(m.layers), m.parameters) for m in modules))


def submission_elements(spec: str) -> int:
    """Elements in a local checkpoint (for a progress bar; 0 when it cannot be told cheaply)."""
    try:
        return sum(i.numel for i in open_checkpoint(spec).tensors()) if Path(spec).exists() else 0
    except CheckerError:
        return 0


def gather_evidence(reader, modules, vocab, refs, device: str = "cpu", progress=None,
                    cache: EvidenceCache | None = None) -> tuple[tuple[ModuleEvidence, ...], tuple[WeightFile, ...]]:
    """The engine's evidence and the weight files' hashes, from one pass over the weights, or
    from the cache when the same weights were compared with the same reference fingerprints."""
    ref_keys = [(e.id, dict(e.fingerprint_sha256)) for e, _ in refs]
    paths = [reader.root / f for f in _weight_paths(reader)]
    if cache is not None:
        files = cache.known_files(reader.root, paths)
        if files is not None:
            hit = cache.load_evidence(cache.evidence_key(files, ref_keys))
            if hit is not None:
                return hit, files
    stream = CheckpointStream(reader)
    evidence = compare(reader, modules, vocab, [(e.id, fp) for e, fp in refs], device, stream, progress)
    if cache is not None:
        cache.remember_files(reader.root, stream.files, stream.stamps)
        cache.store_evidence(cache.evidence_key(stream.files, ref_keys), evidence)
    return evidence, stream.files


def _weight_paths(reader) -> list[str]:
    return sorted({i.file for i in reader.tensors()})


def audit(spec: str, registry: Path, pack: RulePack, today: dt.date | None = None,
          waivers: tuple[Waiver, ...] = (), device: str = "cpu", progress=None,
          cache: EvidenceCache | None = None, ray_address: str | None = None, use_ray: bool = False) -> AuditResult:
    """Audit one submission against every registered reference under one rule pack.

    ``waivers`` (from a side file) are applied together with the pack's own. The
    submission's files are read once: the same pass hashes them and feeds the engine.
    """
    folder, source_type, revision, sub_id = resolve_submission(spec)
    reader = _located(folder, lambda: open_checkpoint(folder))
    refs = load_references(registry)
    registered = {e.id for e, _ in refs}
    for c in pack.criteria:
        named = getattr(c.params, "references", None) or ()
        missing = [r for r in named if r not in registered]
        if missing:  # a typo must not empty the set of comparisons and pass
            raise RulePackError(pack.path, f"criterion {c.id} names reference {missing[0]!r}, which is not registered in {registry}")
    infos = reader.tensors()
    modules = split_modules(infos)
    folder_dir = folder if folder.is_dir() else folder.parent
    vocab = model_vocabulary(folder_dir, reader)
    if use_ray:  # one Ray task per reference (checker.distributed), at ray_address or on a local Ray; same evidence
        from checker.distributed import compare_distributed
        evidence, weight_files = _located(folder, lambda: compare_distributed(folder, registry, [e.id for e, _ in refs],
                                                                              ray_address, device))
    else:
        evidence, weight_files = _located(folder, lambda: gather_evidence(reader, modules, vocab, refs, device, progress, cache))
    tokenizers = tuple(compare_vocabularies(vocab, fp.vocab, e.id) for e, fp in refs if vocab is not None and fp.vocab is not None)
    total = sum(i.numel for i in infos)
    hints = scan_lineage(folder_dir)
    facts = Facts(
        modules=evidence, total_parameters=total, reference_ids=tuple(e.id for e, _ in refs), tokenizers=tokenizers,
        architecture=architecture_facts(folder_dir, modules, refs),
        licenses=scan_licenses(folder_dir), lineage=hints, declared_ancestors=declared_ancestors(hints),
        disclosure=read_inventory(folder_dir, _inventory_files(pack)),
        reference_licenses={e.id: e.license for e, _ in refs}, reference_sources={e.id: e.source for e, _ in refs},
    )
    # Module statuses for the report come from the pack's first weights criterion (all modules,
    # whatever kinds a criterion restricts itself to); each criterion then judges its own.
    weights = [c for c in pack.criteria if c.kind == "weights"]
    first = weights[0].params if weights else None
    mvs: tuple[ModuleVerdict, ...] = module_verdicts(
        facts, first.significance if first else pack.significance, first.references if first else None,
        first.statistic if first else "any", first.max_uncompared if first else MAX_UNCOMPARED)
    results: list[CriterionResult] = [evaluate_weights(c, facts)[0] for c in weights]
    evaluators = {
        "derived_share": lambda c: evaluate_derived_share(c, mvs),
        "tokenizer": lambda c: evaluate_tokenizer(c, facts),
        "architecture": lambda c: evaluate_architecture(c, facts),
        "license": lambda c: evaluate_license(c, facts, mvs),
        "lineage": lambda c: evaluate_lineage(c, facts, mvs),
        "disclosure": lambda c: evaluate_disclosure(c, facts, mvs),
    }
    results += [evaluators[c.kind](c) for c in pack.criteria if c.kind != "weights"]
    if pack.on_unknown != "inconclusive":  # the pack's default for what could not be evaluated
        results = [replace(r, status=pack.on_unknown) if r.status == "inconclusive" and r.severity != "info" else r for r in results]
    order = {c.id: i for i, c in enumerate(pack.criteria)}
    results.sort(key=lambda r: order[r.id])
    results = apply_waivers(results, pack.waivers + tuple(waivers), today or dt.date.today())
    info = SubmissionInfo(sub_id, str(folder), source_type, revision, submission_files(folder, weight_files), total,
                          tuple(f.path for f in weight_files))
    return AuditResult(
        submission=info, pack=pack, references=tuple(e for e, _ in refs), verdict=overall(results),
        derived_param_fraction=derived_fraction(mvs), modules=mvs, criteria=tuple(results), facts=facts,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), derived_module_fraction=derived_module_fraction(mvs),
    )


@dataclass(frozen=True)
class PairComparison:
    """The engine's full view of one pair of models (``fromscratch compare A B``)."""

    a: str
    b: str
    evidence: tuple[ModuleEvidence, ...]
    tokenizer: TokenizerComparison | None


def compare_pair(a: str, b: str, device: str = "cpu") -> PairComparison:
    """Compare model A with model B as if B were the only registered reference (no verdicts)."""
    ra, rb = open_checkpoint(a), open_checkpoint(b)
    pa, pb = Path(a), Path(b)
    va = model_vocabulary(pa if pa.is_dir() else pa.parent, ra)
    vb = model_vocabulary(pb if pb.is_dir() else pb.parent, rb)
    # B is fingerprinted exactly as `registry add` would: the same rows, the same splits (fixed by
    # the tensors' shapes), so `compare` and `audit` give the same figures for the same pair.
    fp = build_fingerprint(rb, vb, str(b), device=device)
    evidence = compare(ra, split_modules(ra.tensors()), va, [(str(b), fp)], device)
    tok = compare_vocabularies(va, vb, str(b)) if va is not None and vb is not None else None
    return PairComparison(str(a), str(b), evidence, tok)
