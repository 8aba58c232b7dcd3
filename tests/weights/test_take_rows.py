"""Scattered rows in one call: the same values as positioned reads one by one, and the same refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from checker.errors import WeightsError
from checker.weights import open_checkpoint
from checker.weights.stream import CheckpointStream


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_scattered_rows_equal_positioned_reads(tmp_path, dtype):
    table = torch.randn(300, 24).to(dtype)
    save_file({"a": torch.randn(7), "embed": table, "z": torch.randn(3, 3)}, str(tmp_path / "model.safetensors"))
    stream = CheckpointStream(open_checkpoint(tmp_path))
    ids = [0, 17, 18, 19, 150, 151, 299]  # runs of consecutive ids, single rows, both ends
    got = stream.take_rows("embed", ids)
    want = torch.cat([stream.rows("embed", i, i + 1) for i in ids])
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert torch.equal(got, table[ids].to(torch.float32))
    assert stream.take_rows("embed", []).shape[0] == 0
    with pytest.raises(ValueError):
        stream.take_rows("embed", [5, 3])


def test_scattered_rows_refuse_nan_and_a_truncated_file(tmp_path):
    table = torch.randn(50, 8)
    table[30, 2] = float("nan")
    save_file({"embed": table}, str(tmp_path / "model.safetensors"))
    stream = CheckpointStream(open_checkpoint(tmp_path))
    assert torch.equal(stream.take_rows("embed", [1, 2]), table[[1, 2]])
    with pytest.raises(WeightsError, match="NaN or infinite"):
        stream.take_rows("embed", [29, 30])
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="truncated"):
        stream.take_rows("embed", [1])
    assert np.isfinite(table[[1]].numpy()).all()
