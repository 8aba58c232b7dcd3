"""Module maps: every supported naming scheme, and the generic fallback."""

from __future__ import annotations

import pytest

from checker.modules import compatible, split_modules
from checker.weights.interface import TensorInfo

CASES = [
    # (tensor name, module, kind, layer, role)
    ("model.layers.3.self_attn.q_proj.weight", "model", "decoder", 3, "q"),
    ("model.layers.3.self_attn.o_proj.weight", "model", "decoder", 3, "o"),
    ("model.layers.0.mlp.gate_proj.weight", "model", "decoder", 0, "gate"),
    ("model.layers.0.mlp.down_proj.weight", "model", "decoder", 0, "down"),
    ("model.layers.0.input_layernorm.weight", "model", "decoder", 0, "norm"),
    ("model.embed_tokens.weight", "model.embed_tokens", "embeddings", None, "embed"),
    ("lm_head.weight", "lm_head", "lm_head", None, "lm_head"),
    ("model.language_model.layers.1.self_attn.k_proj.weight", "model.language_model", "decoder", 1, "k"),
    ("visual.blocks.5.attn.qkv.weight", "visual", "vision_encoder", 5, "qkv"),
    ("visual.blocks.5.attn.proj.weight", "visual", "vision_encoder", 5, "o"),
    ("visual.patch_embed.proj.weight", "visual", "vision_encoder", None, "patch_embed"),
    ("visual.merger.mlp.0.weight", "visual.merger", "projector", None, "linear"),
    ("vision_tower.vision_model.encoder.layers.2.self_attn.v_proj.weight", "vision_tower", "vision_encoder", 2, "v"),
    ("vision_tower.vision_model.embeddings.patch_embedding.weight", "vision_tower", "vision_encoder", None, "patch_embed"),
    ("multi_modal_projector.linear_1.weight", "multi_modal_projector", "projector", None, "linear"),
    ("language_model.model.layers.7.mlp.up_proj.weight", "language_model", "decoder", 7, "up"),
    ("language_model.model.embed_tokens.weight", "language_model.model.embed_tokens", "embeddings", None, "embed"),
    ("audio_tower.layers.4.fc1.weight", "audio_tower", "audio_encoder", 4, "up"),
    ("audio_tower.layers.4.self_attn.out_proj.weight", "audio_tower", "audio_encoder", 4, "o"),
    ("encoder.layer.2.attention.self.query.weight", "encoder", "encoder", 2, "q"),
    ("encoder.layer.2.attention.output.dense.weight", "encoder", "encoder", 2, "o"),
    ("encoder.layer.2.intermediate.dense.weight", "encoder", "encoder", 2, "up"),
    ("encoder.layer.2.output.dense.weight", "encoder", "encoder", 2, "down"),
    ("embeddings.word_embeddings.weight", "embeddings", "embeddings", None, "embed"),
    ("h.1.attn.c_attn.weight", "h", "decoder", 1, "qkv"),
    ("h.1.attn.c_proj.weight", "h", "decoder", 1, "o"),
    ("h.1.mlp.c_proj.weight", "h", "decoder", 1, "down"),
    ("transformer.h.1.mlp.c_fc.weight", "transformer.h", "decoder", 1, "up"),
    ("wte.weight", "wte", "embeddings", None, "embed"),
    ("vision_model.encoder.layers.11.self_attn.q_proj.weight", "vision_model", "vision_encoder", 11, "q"),
    ("vision_model.embeddings.patch_embedding.weight", "vision_model", "vision_encoder", None, "patch_embed"),
    ("text_model.encoder.layers.3.mlp.fc1.weight", "text_model", "encoder", 3, "up"),
    ("model.encoder.layers.5.self_attn.v_proj.weight", "model.encoder", "audio_encoder", 5, "v"),
    ("model.encoder.conv1.weight", "model.encoder", "audio_encoder", None, "patch_embed"),
    ("model.decoder.layers.0.encoder_attn.k_proj.weight", "model.decoder", "decoder", 0, "k"),
    ("custom.blocks.2.lin.weight", "custom.blocks", "generic", 2, "linear"),
    ("rotary.inv_freq", "rotary", "other", None, "other"),
]


@pytest.mark.parametrize("name,module,kind,layer,role", CASES)
def test_classification(name, module, kind, layer, role):
    (m,) = split_modules([TensorInfo(name, (6, 4), "F32", "model.safetensors")])
    t = m.tensors[0]
    assert (m.name, m.kind, t.layer, t.role) == (module, kind, layer, role)


def test_gpt2_conv1d_weights_have_units_on_the_other_axis():
    (m,) = split_modules([TensorInfo("h.0.mlp.c_fc.weight", (4, 16), "F32", "f")])
    assert m.tensors[0].units_axis == 1  # Conv1D stores input x output


def test_norms_and_biases_are_never_decisive():
    mods = split_modules([TensorInfo("model.layers.0.input_layernorm.weight", (8,), "F32", "f"),
                          TensorInfo("visual.blocks.0.attn.qkv.bias", (24,), "F32", "f")])
    assert not any(t.decisive for m in mods for t in m.tensors)


def test_stacks_are_comparable_across_names_but_not_with_embeddings():
    assert compatible("vision_encoder", "decoder") and compatible("embeddings", "lm_head")
    assert not compatible("decoder", "embeddings") and not compatible("other", "other")


def test_a_stray_tensor_does_not_change_the_kind_of_the_module_it_lands_in():
    """`model.embed_positions.weight` (a Whisper-style table beside a Llama decoder) falls to the
    generic fallback as module `model`, kind `other`; the decoder that module map names stays a decoder."""
    infos = [TensorInfo("model.embed_positions.weight", (32, 64), "F32", "m.safetensors"),
             TensorInfo("model.layers.0.self_attn.q_proj.weight", (64, 64), "F32", "m.safetensors")]
    mods = {m.name: m for m in split_modules(infos)}
    assert mods["model"].kind == "decoder" and len(mods["model"].tensors) == 2
