"""The engine's reference comparisons as Ray tasks, on a local Ray or an existing cluster.

Evidence for a (submission module, reference) pair depends on that reference alone
(:func:`checker.metrics.engine.compare` loops over references independently), so the
registry is split into shards, each shard is compared with the submission in its
own task, and the driver concatenates each module's matches and sorts them exactly
as ``compare`` does. The verdicts are those of the local run.

Each task opens the checkpoint and loads its references itself: only paths travel,
never tensors. On a cluster, every node therefore needs fromscratch installed
(``pip install 'fromscratch[ray]'``) and the submission and registry folders at the
same paths (a shared filesystem). Each task reads the submission once and hashes
its files; the driver checks that every task saw the same bytes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from checker.errors import CheckerError, WeightsError
from checker.metrics.interface import ModuleEvidence, Skipped
from checker.weights.interface import WeightFile

__all__ = ["compare_distributed", "shard_references", "merge_evidence", "EXTRA_MISSING"]

#: The one-line answer when ``--ray`` is asked for without the optional extra.
EXTRA_MISSING = "needs the optional extra: pip install 'fromscratch[ray]'"


def _ray():
    try:
        import ray
    except ImportError:
        raise CheckerError("--ray", EXTRA_MISSING) from None
    return ray


@dataclass(frozen=True)
class _Failure:
    """A CheckerError raised in a task, carried back as data: the error classes take
    (subject, reason) and do not survive pickling as exceptions, and a Ray task
    error would print a remote traceback instead of the one-line message."""

    cls: type
    state: dict
    message: str

    def raise_(self):
        exc = self.cls.__new__(self.cls)
        Exception.__init__(exc, self.message)
        exc.__dict__.update(self.state)
        raise exc


def _compare_shard(folder: str, registry: str, ref_ids: tuple[str, ...], device: str, threads: int):
    """One task: the submission against the references ``ref_ids`` (all paths, read here)."""
    import torch

    from checker.hardware import reuse_freed_blocks
    from checker.metrics.engine import compare
    from checker.modules import split_modules
    from checker.references.registry import load_references
    from checker.scanners.tokenizer import model_vocabulary
    from checker.weights import open_checkpoint
    from checker.weights.stream import CheckpointStream

    torch.set_num_threads(max(1, threads))  # the task's share of the node's cores, no more
    reuse_freed_blocks()
    try:
        path = Path(folder)
        reader = open_checkpoint(path)
        refs = load_references(Path(registry), only=ref_ids) if ref_ids else ()
        modules = split_modules(reader.tensors())
        vocab = model_vocabulary(path if path.is_dir() else path.parent, reader)
        stream = CheckpointStream(reader)
        evidence = compare(reader, modules, vocab, [(e.id, fp) for e, fp in refs], device, stream)
        return evidence, stream.files
    except CheckerError as exc:
        return _Failure(type(exc), dict(exc.__dict__), str(exc))


def shard_references(ref_ids: Sequence[str], per_shard: int = 1) -> list[tuple[str, ...]]:
    """Groups of reference ids, one task each (one reference per task by default). With no
    reference at all there is still one task: it hashes the files, as the local run does."""
    ids = list(ref_ids)
    if not ids:
        return [()]
    return [tuple(ids[i:i + per_shard]) for i in range(0, len(ids), max(1, per_shard))]


def merge_evidence(parts: Sequence[tuple[ModuleEvidence, ...]]) -> tuple[ModuleEvidence, ...]:
    """One module's evidence from several reference shards, as one ``compare`` over all of them
    would give: matches concatenated and sorted as ``compare`` sorts them, skipped comparisons
    kept once each (in shard order)."""
    if not parts:
        return ()
    names = [ev.module.name for ev in parts[0]]
    for p in parts[1:]:
        if [ev.module.name for ev in p] != names:
            raise RuntimeError("reference shards split the submission into different modules")
    out = []
    for i, first in enumerate(parts[0]):
        matches = [m for p in parts for m in p[i].matches]
        matches.sort(key=lambda x: (x.log10_p, -x.identical_fraction))
        skipped: dict[Skipped, None] = dict.fromkeys(s for p in parts for s in p[i].skipped)
        out.append(ModuleEvidence(first.module, tuple(matches), tuple(skipped)))
    return tuple(out)


def connect(address: str | None) -> None:
    """Connect to the Ray cluster at ``address`` (e.g. ``auto`` or ``ray://head:10001``), or start
    a quiet local one on this machine's cores. A connection already open in this process is
    reused, so a batch of audits starts Ray once; Ray closes it when the process exits."""
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError: Ray's own, one line each
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckerError("--ray", f"cannot start or reach {where}: {first}") from None


def compare_distributed(spec_folder: Path, registry: Path, ref_ids: list[str], address: str | None, device: str,
                        cpus_per_task: int = 1, refs_per_task: int = 1,
                        ) -> tuple[tuple[ModuleEvidence, ...], tuple[WeightFile, ...]]:
    """The submission at ``spec_folder`` against the references ``ref_ids`` of ``registry``, one
    Ray task per shard of ``refs_per_task`` references: the evidence of one local ``compare`` and
    the submission's weight-file records.

    ``address`` None starts a local Ray; ``cpus_per_task`` is what each task asks Ray for and the
    torch threads it uses. A task on ``cuda`` asks for one GPU.
    """
    ray = _ray()
    connect(address)
    options = {"num_cpus": cpus_per_task, "max_retries": 0}
    if device.startswith("cuda"):
        options["num_gpus"] = 1
    task = ray.remote(_compare_shard).options(**options)
    folder, reg = str(Path(spec_folder).resolve()), str(Path(registry).resolve())
    pending = [task.remote(folder, reg, shard, device, cpus_per_task) for shard in shard_references(ref_ids, refs_per_task)]
    try:
        results = ray.get(pending)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, CheckerError):
            raise cause from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckerError("--ray", f"a Ray task failed: {first}") from None
    for r in results:
        if isinstance(r, _Failure):
            r.raise_()
    files = results[0][1]
    for _, other in results[1:]:
        if other != files:
            raise WeightsError(str(spec_folder), "the weight files changed during the audit "
                                                 "(Ray tasks read different bytes); audit again once they are stable")
    return merge_evidence([ev for ev, _ in results]), files
