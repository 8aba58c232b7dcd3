"""Layer-pair scores kept as columns (checker/metrics/pairlog.py): the screen's table gives the
figures the per-cell objects gave, weak evidence is kept where a report can show it, the cache
reads the table back bit for bit, and an audit keeps cells linear in depth."""

from __future__ import annotations

import json
import operator
import pickle
from copy import deepcopy
from dataclasses import asdict, replace
from functools import reduce

import numpy as np
import pytest

from checker.cache import _evidence, _encoded
from checker.metrics.pairlog import PairLog, ScreenTable
from checker.metrics.stats import log10_sf


def _screen_log(rng, pairs) -> tuple[PairLog, dict, set]:
    log, expected, compared = PairLog(), {}, set()
    for sub, ref in pairs:
        for role in ("q", "k", "up")[: rng.integers(1, 4)]:
            z = float(rng.standard_normal() * 3)
            log.add(sub, ref, (role, role), round(float(rng.uniform(-1, 1)), 6), z, float(log10_sf(z)), 16)
            expected.setdefault((sub, ref), []).append(z)
            compared.add((sub, role))
    return log, expected, compared


def test_pairs_come_in_cell_order_with_the_stouffer_z_of_their_rows():
    rng = np.random.default_rng(0)
    pairs = [(3, 1), (None, None), (0, 12), (12, 0), (2, 2), (0, 3), (None, 4), (3, 0)]
    rng.shuffle(pairs)
    log, expected, compared = _screen_log(rng, pairs + pairs[:3])  # some pairs logged twice, apart
    table = log.screen_table()
    got, z, row_pair = table.by_pair()
    assert got == sorted(expected, key=lambda k: (k[0] is not None, k[0] or 0, k[1] is not None, k[1] or 0))
    for i, pair in enumerate(got):
        zs = expected[pair]
        assert z[i] == reduce(operator.add, zs, 0.0) / len(zs) ** 0.5  # bit for bit: summed in the order scored
        rows = np.flatnonzero(row_pair == i)
        assert [(None if s < 0 else s, None if r < 0 else r) for s, r in
                zip(table.sub_layer[rows], table.ref_layer[rows])] == [pair] * len(zs)
        assert table.z[rows].tolist() == zs
    assert len(table) == sum(map(len, expected.values()))
    assert table.compared() == compared
    assert table.layers() == ({0, 2, 3, 12}, {0, 1, 2, 3, 4, 12})


def test_weak_rows_are_kept_for_tested_same_index_and_layerless_pairs_only():
    log = PairLog()
    for sub, ref in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 5), (None, 3), (4, 4), (2, 5)]:
        log.add(sub, ref, ("norm", f"s.{sub}", f"r.{ref}"), 0.9, 0.99)
    kept = [(pair, label[1]) for pair, label, _, _ in log.rows_near({(2, 5)})]
    assert kept == [((0, 0), "s.0"), ((1, 1), "s.1"), ((2, 5), "s.2"), ((None, 3), "s.None"), ((4, 4), "s.4"),
                    ((2, 5), "s.2")]
    assert [p for p, *_ in log.rows_near(set())] == [(0, 0), (1, 1), (None, 3), (4, 4)]


def _cached(table: ScreenTable) -> dict:
    return json.loads(json.dumps(asdict(table), default=_encoded))


def test_the_cache_reads_the_table_back_bit_for_bit():
    rng = np.random.default_rng(1)
    log, _, _ = _screen_log(rng, [(i, j) for i in range(5) for j in range(5)] + [(None, None)])
    table = log.screen_table()
    back = ScreenTable.from_json(_cached(table))
    assert back == table and hash(back) == hash(table)
    assert back.z.dtype == np.float64 and back.label.dtype == np.int16
    assert ScreenTable.empty() == ScreenTable.from_json(_cached(ScreenTable.empty())) and not len(ScreenTable.empty())
    changed = ScreenTable.from_json(_cached(replace(table, z=np.nextafter(table.z, np.inf))))
    assert changed != table
    for copy in (pickle.loads(pickle.dumps(table)), deepcopy(table), back):  # as Ray and the cache hand it back
        assert copy == table and not copy.z.flags.writeable and not copy.label.flags.writeable


@pytest.mark.parametrize("damage", ["label past the labels", "short column", "column of another type", "not base64"])
def test_a_damaged_cached_table_is_recomputed_not_a_crash(tmp_path, damage):
    from checker.cache import EvidenceCache
    from checker.metrics.interface import AlignmentSummary, Match, ModuleEvidence
    from checker.modules import Module

    log, _, _ = _screen_log(np.random.default_rng(2), [(0, 0), (0, 1), (1, 0)])
    table = log.screen_table()
    match = Match("ref", "m", "decoder", "hidden_gram_mantel", 0.0, 0.0, 0.0, 0.0, 0, (), 0.0,
                  AlignmentSummary("identity", False, 0, 8, None, ()), (), True, 3, screen=table)
    cache = EvidenceCache(tmp_path)
    cache.store_evidence("k", (ModuleEvidence(Module("m", "decoder", "x", ()), (match,), ()),))
    assert cache.load_evidence("k")[0].matches[0].screen == table
    path = tmp_path / "evidence" / "k.json"
    data = json.loads(path.read_text())
    cols = data["modules"][0]["matches"][0]["screen"]
    bad = {"label past the labels": ("label", replace(table, label=table.label + 40)),
           "short column": ("z", replace(table, z=table.z[:-1])),
           "column of another type": ("dims", replace(table, dims=table.dims.astype(np.float64)))}
    if damage == "not base64":
        cols["z"]["b64"] = "***"
    else:
        name, t = bad[damage]
        cols[name] = _cached(t)[name]
    path.write_text(json.dumps(data))
    assert cache.load_evidence("k") is None  # read as missing: the evidence is computed again


def test_the_screen_statistic_is_the_first_best_pair_over_the_pairs_screened():
    """When the screen sent nothing to the full test, the module's figure is the best pair's
    Stouffer z, Bonferroni-corrected over the layer pairs screened (not the rows), with that
    pair's mean Mantel r; of two pairs with the same z, the first in cell order."""
    from checker.metrics.aggregate import aggregate
    from checker.metrics.interface import AlignmentSummary
    from checker.modules import Module

    log = PairLog()
    tie = 4.0 / 2 ** 0.5
    for sub, ref, z, r in [(2, 2, tie, 0.05), (1, 1, 2.0, 0.2), (1, 0, 2.0, 0.25), (0, 2, 1.5, 0.1), (0, 0, 0.5, 0.0),
                           (1, 0, 2.0, 0.35), (0, 1, 0.1, 0.0), (1, 1, 0.7, 0.2)]:
        log.add(sub, ref, ("q", "q"), r, z, float(log10_sf(z)), 16)
    m = aggregate(Module("m", "decoder", "x", ()), "ref", Module("m", "decoder", "x", ()), {}, None, log, set(),
                  AlignmentSummary("identity", False, 0, 8, None, ()))
    assert m.statistic == "hidden_gram_mantel" and m.cells_screened == 6 and m.cells_tested == 0 and m.cells == ()
    # (1, 0): two rows of z 2, Stouffer 4 / sqrt 2, as (2, 2)'s one row; (1, 0) comes first
    assert m.z == round(tie, 4) and m.score == 0.3  # the mean Mantel r of (1, 0)'s rows
    assert m.log10_p == log10_sf(tie) + np.log10(6)
    assert m.decisive and len(m.screen) == 8


def test_an_audit_keeps_cells_for_tested_pairs_and_the_screen_as_a_table(zoo, tmp_path):
    """An independent model against the registry: every layer pair of the decoder is screened
    (rows of the table), but cells exist only for the pairs a test scored and the same-index
    pairs; the report's layer matrix still spans every layer screened, and the cache agrees."""
    from checker.audit import gather_evidence
    from checker.cache import EvidenceCache
    from checker.modules import split_modules
    from checker.references.registry import load_references
    from checker.scanners.tokenizer import model_vocabulary
    from checker.report.json_report import layer_matrix
    from checker.weights import open_checkpoint

    folder = zoo.save("pairlog-ind", zoo.ind_vit, zoo.ind_lm)
    reader = open_checkpoint(folder)
    evidence = gather_evidence(reader, split_modules(reader.tensors()), model_vocabulary(folder, reader),
                               load_references(zoo.registry))[0]
    lm = next(m for ev in evidence if ev.module.name == "model" for m in ev.matches if m.reference_module == "model")
    layers = len(zoo.ind_lm.model.layers)
    subs, refs = lm.layers()
    assert len(subs) == layers and lm.cells_screened == len(subs) * len(refs)
    assert len(lm.screen) >= lm.cells_screened  # one row per role pair of every screened layer pair
    off_index = [c for c in lm.cells if c.sub_layer != c.ref_layer and not (c.roles or c.index)]
    assert off_index == []  # no cell for a pair only the screen or a norm comparison saw
    assert len(lm.cells) <= len(subs) * (1 + 4)
    grid = layer_matrix(lm)
    assert grid["sub_layers"] == list(range(layers)) and grid["ref_layers"] == list(range(len(zoo.ref_lm.model.layers)))
    assert len(grid["z"]) == layers and all(len(row) == len(refs) for row in grid["z"])
    cache = EvidenceCache(tmp_path / "cache")
    cache.store_evidence("k", evidence)
    assert cache.load_evidence("k") == evidence
    assert _evidence(json.loads(json.dumps(asdict(evidence[0]), default=_encoded))) == evidence[0]
