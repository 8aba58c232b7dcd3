"""A layer number no real model carries is refused in one line, naming the tensor, where a module
map says it is a layer; a large number in a name no map knows is no layer at all."""

from __future__ import annotations

import pytest

from checker.errors import WeightsError
from checker.modules import MAX_LAYER, classify
from checker.weights.interface import TensorInfo


def _info(name: str) -> TensorInfo:
    return TensorInfo(name, (4, 4), "BF16", "model.safetensors")


@pytest.mark.parametrize("name", [f"model.layers.{MAX_LAYER + 1}.mlp.up_proj.weight", "visual.blocks.3000000000.attn.qkv.weight",
                                  "model.layers." + "9" * 5000 + ".mlp.up_proj.weight"])  # past int()'s 4,300 digits
def test_an_absurd_layer_number_is_refused(name):
    with pytest.raises(WeightsError) as err:
        classify(_info(name))
    assert str(err.value).startswith(f"{name[:200]}: layer number ") and "out of range" in str(err.value)
    assert len(str(err.value)) < 400  # one line a terminal can show


def test_a_deep_but_real_layer_number_is_kept():
    role, _ = classify(_info(f"model.layers.{MAX_LAYER}.mlp.up_proj.weight"))
    assert role.layer == MAX_LAYER and role.role == "up"
    role, _ = classify(_info("model.layers." + "0" * 5000 + "7.mlp.up_proj.weight"))  # zeros do not count
    assert role.layer == 7


def test_a_large_number_in_an_unmapped_name_is_no_layer():
    role, _ = classify(_info("adapter.20240131.proj.weight"))  # a date, not layer 20 million
    assert role.layer is None and role.module == "adapter"
    role, _ = classify(_info("adapter.7.proj.weight"))
    assert role.layer == 7 and role.module == "adapter"
