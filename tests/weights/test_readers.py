"""Weights readers: formats, dtypes, sharding, and refusing what is unsafe or broken."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from checker.errors import WeightsError
from checker.synth import save_checkpoint
from checker.weights import open_checkpoint


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"a.weight": torch.randn(8, 4, generator=g), "b.weight": torch.randn(3, generator=g), "c.bias": torch.randn(5, generator=g)}


def test_single_and_sharded_read_the_same_tensors(tmp_path):
    t = _tensors()
    one = open_checkpoint(save_checkpoint(tmp_path / "one", t))
    many = open_checkpoint(save_checkpoint(tmp_path / "many", t, shards=3))
    assert [i.name for i in one.tensors()] == [i.name for i in many.tensors()] == sorted(t)
    for name in t:
        assert torch.equal(one.get(name), t[name]) and torch.equal(many.get(name), t[name])
    assert len(many.files()) == 3 and all(len(f.sha256) == 64 for f in many.files())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float8_e4m3fn])
def test_low_precision_is_converted_to_float32(tmp_path, dtype):
    t = torch.randn(4, 4)
    save_file({"w": t.to(dtype)}, str(tmp_path / "model.safetensors"))
    r = open_checkpoint(tmp_path)
    got = r.get("w")
    assert got.dtype == torch.float32
    assert torch.equal(got, t.to(dtype).to(torch.float32))
    assert r.tensors()[0].dtype in ("F16", "BF16", "F8_E4M3")


def test_rows_are_read_without_the_rest(tmp_path):
    t = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    r = open_checkpoint(save_checkpoint(tmp_path / "m", {"w": t}))
    assert torch.equal(r.get_rows("w", 3, 5), t[3:5])


def test_safe_bin_loads_with_weights_only(tmp_path):
    torch.save(_tensors(), tmp_path / "pytorch_model.bin")
    r = open_checkpoint(tmp_path)
    assert {i.name for i in r.tensors()} == set(_tensors())


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "pytorch_model.bin"
    with path.open("wb") as fh:
        pickle.dump({"w": _Evil()}, fh)
    with pytest.raises(WeightsError) as err:
        open_checkpoint(tmp_path)
    assert str(err.value).startswith("pytorch_model.bin: refused: does not load with weights_only=True")
    assert "this must never run" not in capsys.readouterr().out


def test_corrupt_safetensors_names_the_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError) as err:
        open_checkpoint(tmp_path)
    assert str(err.value).startswith("model.safetensors: not a readable safetensors file")


def test_missing_shard_is_reported(tmp_path):
    folder = save_checkpoint(tmp_path / "m", _tensors(), shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightsError) as err:
        open_checkpoint(folder)
    assert str(err.value) == f"{folder / 'model.safetensors.index.json'}: shard 'model-00002-of-00002.safetensors' is missing"


def test_folder_without_weights(tmp_path):
    with pytest.raises(WeightsError) as err:
        open_checkpoint(tmp_path)
    assert "no weights found" in str(err.value)


def test_nan_weights_are_refused(tmp_path):
    t = torch.randn(4, 4)
    t[1, 2] = float("nan")
    r = open_checkpoint(save_checkpoint(tmp_path / "m", {"w": t}))
    with pytest.raises(WeightsError) as err:
        r.get("w")
    assert str(err.value) == "model.safetensors: tensor 'w' holds NaN or infinite values"


def test_a_second_weight_set_is_refused_not_ignored(tmp_path):
    """A copy hidden beside the audited weights would be hashed into the report unaudited."""
    folder = save_checkpoint(tmp_path / "m", _tensors())
    torch.save(_tensors(), folder / "pytorch_model.bin")
    (folder / "vision").mkdir()
    save_file(_tensors(), str(folder / "vision" / "model.safetensors"))
    with pytest.raises(WeightsError) as err:
        open_checkpoint(folder)
    assert str(err.value) == (f"{folder}: also holds weights that would not be audited (pytorch_model.bin, "
                              "vision/model.safetensors); audit each weight set on its own (name its file or folder) or remove the copies")
    assert open_checkpoint(folder / "model.safetensors").tensors()  # naming the file audits that set
    (folder / "training_args.bin").write_bytes(b"not weights")
