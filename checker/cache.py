"""The evidence cache: a re-audit of unchanged weights (after a rule or pack change) reads none.

Two tables under one folder (``$FROMSCRATCH_CACHE`` or ``~/.cache/fromscratch``):

- ``files/``: the sha256 of a weight file, keyed by its absolute path and its
  (size, mtime_ns, ctime_ns, inode). ctime cannot be set back by a user, so a file
  rewritten in place gets a new key. Content hashes are the identity; the stat key
  only says when the hash need not be recomputed.
- ``evidence/``: the engine's evidence for a submission, keyed by the sha256 of its
  weight files, the fingerprint digests of every reference compared, and the tool
  and fingerprint versions. A new or re-added reference is a new key.

Entries are JSON (no pickle) written atomically; an unreadable entry is ignored and
rewritten. ``--no-cache`` turns both tables off (a signing run may want that).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from checker import __version__
from checker.metrics.interface import (
    AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore, Skipped, WeakScore,
)
from checker.metrics.pairlog import ScreenTable, column_json
from checker.modules import Module, TensorRole
from checker.references.fingerprint import FINGERPRINT_VERSION
from checker.weights.common import file_stamp
from checker.weights.interface import WeightFile

#: 3: the index test scores identity-aligned references from their stored side (float16), anchors are normed
#: in float64 and the t tail comes from scipy.special: figures move in the last digits, so evidence computed
#: before is not reused.
#: 4: the full test reads each matrix once (moments and search in one pass); the search half of a matrix
#: larger than one block is standardised with the moments of evenly sampled units. A rotation of the residual
#: stream turns only the modules of its own stream (anchors.lends_rotation): a merger beside a rotated decoder
#: is no longer compared through the decoder's rotation.
#: 5: a match with any cell scored through a rotation is labelled review-only (engine: ``acc.turned``).
#: 6: the screen's scores are one table per match (``Match.screen``), not objects per cell; weak evidence is
#: kept for the pairs the tests scored and the same-index pairs only.
CACHE_VERSION = 6


def default_dir() -> Path:
    env = os.environ.get("FROMSCRATCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fromscratch"


class EvidenceCache:
    def __init__(self, folder: Path):
        self.folder = folder

    # -- file hashes -------------------------------------------------------------------
    def _stat_key(self, path: Path, stamp: tuple | None = None) -> str:
        """The file's key: its path and its stamp (checker.weights.common.file_stamp), now or as given."""
        _, ino, size, mtime, ctime = stamp or file_stamp(path, str(path))
        raw = f"{path.resolve()}|{size}|{mtime}|{ctime}|{ino}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def known_files(self, root: Path, paths: list[Path]) -> tuple[WeightFile, ...] | None:
        """The weight files' records if every one is known under its current stat key."""
        out = []
        for p in paths:
            data = self._read(self.folder / "files" / f"{self._stat_key(p)}.json")
            if data is None:
                return None
            out.append(WeightFile(_rel(root, p), data["sha256"], data["bytes"]))
        return tuple(out)

    def remember_files(self, root: Path, files: tuple[WeightFile, ...], stamps: dict | None = None) -> None:
        """Each file's hash under its key; ``stamps`` (path -> stamp) are the files as they were
        hashed, when the pass took them (a file changed since is then not found under its new key)."""
        for f in files:
            p = root / f.path
            self._write(self.folder / "files" / f"{self._stat_key(p, (stamps or {}).get(p))}.json",
                        {"sha256": f.sha256, "bytes": f.bytes})

    # -- evidence ----------------------------------------------------------------------
    @staticmethod
    def evidence_key(files: tuple[WeightFile, ...], refs: list[tuple[str, dict]]) -> str:
        body = {"cache": CACHE_VERSION, "tool": __version__, "fingerprint": FINGERPRINT_VERSION, "engine": _engine_settings(),
                "files": sorted((f.path, f.sha256) for f in files), "refs": sorted((rid, sorted(d.items())) for rid, d in refs)}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def load_evidence(self, key: str) -> tuple[ModuleEvidence, ...] | None:
        data = self._read(self.folder / "evidence" / f"{key}.json")
        if data is None:
            return None
        try:
            return tuple(_evidence(e) for e in data["modules"])
        except (KeyError, TypeError, ValueError, OverflowError):  # a damaged entry only costs time
            return None

    def store_evidence(self, key: str, evidence: tuple[ModuleEvidence, ...]) -> None:
        self._write(self.folder / "evidence" / f"{key}.json", {"modules": [asdict(e) for e in evidence]})

    # -- plumbing ----------------------------------------------------------------------
    @staticmethod
    def _read(path: Path):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write(path: Path, data) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, default=_encoded), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def _encoded(x):
    """Arrays (a match's screen table's columns) as their bytes in base64: read back bit for bit."""
    if isinstance(x, np.ndarray):
        return column_json(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _engine_settings() -> dict:
    """The thresholds evidence depends on: changing one invalidates cached evidence even when
    the tool's version number did not move."""
    from checker.metrics import alignment, anchors, engine, indexed, rotation, screen

    return {"screen": [screen.SCREEN_DIMS, screen.SCREEN_Z, screen.MAX_CANDIDATES, screen.MIN_SCREEN_DIMS],
            "anchors": [anchors.ANCHOR_MIN_Z, anchors.MIN_ANCHORS, anchors.GEOMETRY_MIN_R, anchors.UNRELATED_HELD],
            "stats": [alignment.N_ROTATIONS, alignment.N_ROTATIONS_LARGE, alignment.LARGE_WIDTH, alignment.HAAR_MAX,
                      alignment.SEARCH_ANCHORS, alignment.HELD_ANCHORS],
            "engine": [engine.DIGEST_Z, engine.LAYER_MAP_ALPHA],
            "index": [indexed.INDEX_COLS], "rotation": [rotation.ROTATION_MIN_R, rotation.ROTATION_MIN_SCORE, rotation.PROJECTION_ANCHORS]}


def _rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return p.name


def _t(x):
    return tuple(_t(i) for i in x) if isinstance(x, list) else x


def _evidence(d: dict) -> ModuleEvidence:
    mod = d["module"]
    module = Module(mod["name"], mod["kind"], mod["family"],
                    tuple(TensorRole(**{**t, "shape": tuple(t["shape"])}) for t in mod["tensors"]))
    matches = []
    for m in d["matches"]:
        cells = tuple(LayerCell(c["sub_layer"], c["ref_layer"], c["score"], c["z"], c["log10_p"],
                                tuple(RoleScore(**r) for r in c["roles"]), tuple(WeakScore(**w) for w in c["weak"]),
                                tuple(RoleScore(**r) for r in c["index"]))
                      for c in m["cells"])
        al = m["alignment"]
        matches.append(Match(**{**m, "layer_map": _t(m["layer_map"]), "cells": cells, "screen": ScreenTable.from_json(m["screen"]),
                                "identical_tensors": _t(m.get("identical_tensors", [])),
                                "alignment": AlignmentSummary(**{**al, "permutation": tuple(al["permutation"])})}))
    return ModuleEvidence(module, tuple(matches), tuple(Skipped(**{**s, "args": _t(s.get("args", []))}) for s in d["skipped"]))
