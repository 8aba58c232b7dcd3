"""GGUF: a quantised llama.cpp conversion of a fine-tuned model is still recognised."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from checker import synth
from checker.audit import audit
from checker.modules import split_modules
from checker.rules import load_pack
from checker.weights import open_checkpoint

gguf = pytest.importorskip("gguf")

NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
PARTS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
         "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def llama_cpp_name(name: str) -> str:
    if name in NAMES:
        return NAMES[name]
    _, _, layer, rest = name.split(".", 3)
    part = rest.rsplit(".", 1)[0]
    return f"blk.{layer}.{PARTS[part]}.weight"


def write_gguf(path, state: dict[str, torch.Tensor], tokens: list[str], quant=gguf.GGMLQuantizationType.Q8_0):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_token_list(tokens)
    for name, t in state.items():
        arr = t.numpy().astype(np.float32)
        if arr.ndim == 2 and quant is not None:
            w.add_tensor(llama_cpp_name(name), gguf.quants.quantize(arr, quant), raw_dtype=quant)
        else:
            w.add_tensor(llama_cpp_name(name), arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_names_shapes_and_values(tmp_path):
    state = {"model.layers.0.mlp.up_proj.weight": torch.randn(64, 32), "model.layers.0.input_layernorm.weight": torch.ones(32)}
    write_gguf(tmp_path / "m.gguf", state, ["a", "b"], quant=None)
    r = open_checkpoint(tmp_path)
    infos = {i.name: i for i in r.tensors()}
    assert infos["blk.0.ffn_up.weight"].shape == (64, 32)
    assert torch.equal(r.get("blk.0.ffn_up.weight"), state["model.layers.0.mlp.up_proj.weight"])
    (mod,) = split_modules(r.tensors())
    assert mod.name == "blk" and mod.kind == "decoder" and {t.role for t in mod.tensors} == {"up", "norm"}
    assert r.vocabulary().tokens == ("a", "b")


def test_q8_gguf_of_a_fine_tune_is_derived(zoo, tmp_path):
    write_gguf(tmp_path / "model-Q8_0.gguf", synth.state(zoo.ft_lm), zoo.vocab)
    mods = {mv.name: mv for mv in audit(str(tmp_path), zoo.registry, load_pack()).modules}
    assert mods["blk"].status == "derived" and mods["blk"].best.reference_module == "model"
    assert dict(mods["blk"].best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    assert mods["token_embd"].status == "derived"
