"""A weight file that changes while it is audited (a checkpoint still being copied or written).

Its bytes may then belong to two versions: the modules split from one header, the hash and the
evidence from other bytes, or a report naming bytes no longer at the path. Each file is stamped
(device, inode, size, modification and change times) before its header is read, and a file that
no longer carries its stamp when the stream opens it or when the pass ends is refused in one
line: no hash, no evidence, no cache entry, no report.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

from checker.cache import EvidenceCache
from checker.errors import WeightsError
from checker.weights import open_checkpoint
from checker.weights.common import file_stamp, sha256_file
from checker.weights.stream import CheckpointStream


def _model(folder, shards: int = 1):
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    paths = []
    for i in range(shards):
        path = folder / (f"model-{i + 1:05d}-of-{shards:05d}.safetensors" if shards > 1 else "model.safetensors")
        save_file({f"model.layers.{i}.mlp.up_proj.weight": torch.randn(64, 64, generator=g).to(torch.bfloat16),
                   f"model.layers.{i}.input_layernorm.weight": torch.ones(64, dtype=torch.bfloat16)}, str(path))
        paths.append(path)
    if shards > 1:
        weight_map = {n: p.name for i, p in enumerate(paths) for n in (f"model.layers.{i}.mlp.up_proj.weight",
                                                                       f"model.layers.{i}.input_layernorm.weight")}
        (folder / "model.safetensors.index.json").write_text(f'{{"weight_map": {weight_map!r}}}'.replace("'", '"'))
    return paths


def _write_back_with_old_mtime(path):
    """Rewrite the file in place with the same bytes and set its modification time back (cp -p)."""
    st = path.stat()
    path.write_bytes(path.read_bytes())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _replace_with_same_size_copy(path):
    """Replace the file by a copy of the same size and modification time (an rsync-style rename)."""
    copy = path.with_name("copy.tmp")
    shutil.copy2(path, copy)
    os.replace(copy, path)


def _touch_forward(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.mark.parametrize("change", [_touch_forward, _write_back_with_old_mtime, _replace_with_same_size_copy])
def test_a_file_changed_during_its_pass_is_refused(tmp_path, change):
    (path,) = _model(tmp_path / "m")
    stream = CheckpointStream(open_checkpoint(path.parent))
    with pytest.raises(WeightsError, match="changed while it was audited") as err:
        for i, st in enumerate(stream):
            st.load()
            if i == 0:
                change(path)
    assert str(err.value).startswith("model.safetensors: ")
    left_alone = CheckpointStream(open_checkpoint(path.parent))  # the file as it is now: hashed as usual
    for st in left_alone:
        st.load()
    assert left_alone.files[0].sha256 == sha256_file(path)


def test_a_shard_replaced_after_its_own_pass_is_refused_when_the_pass_ends(tmp_path):
    first, second = _model(tmp_path / "m", shards=2)
    stream = CheckpointStream(open_checkpoint(tmp_path / "m"))
    with pytest.raises(WeightsError, match=f"{first.name}: changed while it was audited"):
        for st in stream:
            st.load()
            if st.info.file == second.name:  # the first shard's pass is over
                _replace_with_same_size_copy(first)


def test_a_file_replaced_between_the_reader_and_the_pass_is_refused_before_any_tensor(tmp_path):
    """The modules were split from the reader's headers: a file replaced before the stream opens
    (another model, other tensor names) is refused there, not met as an unknown tensor."""
    (path,) = _model(tmp_path / "m")
    reader = open_checkpoint(path.parent)
    save_file({"other.weight": torch.zeros(8, 8)}, str(path))
    with pytest.raises(WeightsError, match="model.safetensors: changed while it was audited"):
        CheckpointStream(reader)


def test_the_cache_keeps_a_file_under_the_stamp_it_was_hashed_with(tmp_path):
    (path,) = _model(tmp_path / "m")
    stream = CheckpointStream(open_checkpoint(path.parent))
    for st in stream:
        st.load()
    cache = EvidenceCache(tmp_path / "cache")
    _touch_forward(path)  # changed after the pass, before its hash was remembered
    cache.remember_files(path.parent, stream.files, stream.stamps)
    assert cache.known_files(path.parent, [path]) is None  # the changed file is not taken for the hashed one
    assert file_stamp(path, "x") != stream.stamps[path]
    cache.remember_files(path.parent, stream.files)  # without stamps: the file as it is now
    assert cache.known_files(path.parent, [path]) == stream.files


def test_the_cli_refuses_a_file_changed_during_the_audit_in_one_line(zoo, tmp_path, monkeypatch, capsys):
    import checker.audit
    from checker.cli.main import main

    folder = zoo.save("changing", zoo.ft_vit, zoo.ind_lm)
    weights = sorted(folder.glob("*.safetensors"))
    real = checker.audit.load_references

    def load_while_the_copy_goes_on(registry):  # the files change after the reader read their headers
        _touch_forward(weights[0])
        return real(registry)

    monkeypatch.setattr(checker.audit, "load_references", load_while_the_copy_goes_on)
    out = tmp_path / "out"
    assert main(["audit", str(folder), "--registry", str(zoo.registry), "--out", str(out), "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"fromscratch: {weights[0]}: changed while it was audited (written to, replaced or its metadata "
                   "changed after the audit opened it); audit it again once it is complete")
    assert not out.exists()
