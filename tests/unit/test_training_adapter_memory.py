"""The adapter stage's memory knobs: gradient checkpointing (same gradients, fewer saved activations) and
``precision=bf16`` (frozen base in bf16 during the stage, exports keep the original fp32 base)."""

from __future__ import annotations

import json

import pytest
import torch
from test_training_stages import make, snapshot

from foleykit.models.layers import Conditions
from foleykit.training.trainer import Trainer


def _step(pipe, g):
    """Loss and ControlNet gradients of one denoiser forward with the pipeline's (only) adapter."""
    adapter = next(iter(pipe.adapters.values()))
    adapter.net.zero_grad(set_to_none=True)
    shape = (1, *pipe.codec.latent_shape())
    x = torch.randn(shape, generator=g)
    seq = pipe.seq
    series = torch.rand(1, 64, generator=g)
    feats = adapter.encoder(series, num_latent_frames=shape[2], codec=pipe.codec)
    if pipe.denoiser.kind == "dit":
        tokens = torch.randn(1, 3, pipe.denoiser.cross_attention_dim, generator=g)
        cond = Conditions(
            tokens=tokens, seconds_start=torch.zeros(1), seconds_total=torch.full((1,), seq.duration)
        )
    else:
        cond = Conditions(global_embed=torch.randn(1, pipe.denoiser.global_dim, generator=g))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        out = pipe.denoiser(x, torch.tensor([300]), cond, controls=[(adapter.net, feats, 1.0)])
    loss = (out.float() ** 2).mean()
    loss.backward()
    return (
        loss.item(),
        {k: p.grad.clone() for k, p in adapter.net.named_parameters() if p.grad is not None},
        sum(saved),
    )


@pytest.mark.parametrize("recipe", ["rewas", "stable_v2a"])
def test_gradient_checkpointing_keeps_gradients_and_saves_activations(tmp_path, recipe):
    from foleykit.recipes import build_pipeline
    from foleykit.training.stages.adapter import enable_checkpointing

    torch.manual_seed(0)
    pipe = build_pipeline(recipe, size="debug")
    pipe.denoiser.requires_grad_(False)
    adapter = next(iter(pipe.adapters.values()))
    with torch.no_grad():  # non-zero outputs so that gradients reach every copied block
        for p in adapter.net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    loss0, grads0, saved0 = _step(pipe, torch.Generator().manual_seed(1))
    switched = enable_checkpointing(pipe, list(pipe.adapters))
    loss1, grads1, saved1 = _step(pipe, torch.Generator().manual_seed(1))
    assert switched[0] in ("unet", "transformer")
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert grads1.keys() == grads0.keys() and len(grads0) > 10
    for k in grads0:
        torch.testing.assert_close(grads1[k], grads0[k], rtol=1e-5, atol=1e-7)
    assert saved1 < 0.8 * saved0, (saved1, saved0)  # activations recomputed instead of kept


@pytest.mark.parametrize("recipe", ["rewas", "stable_v2a"])
def test_bf16_holds_the_frozen_base_in_bf16_and_exports_it_in_fp32(tmp_path, recipe):
    stage, pipe = make(
        tmp_path,
        recipe,
        "adapter",
        [n for n in pipe_components(recipe) if n.startswith(("controlnet_", "control_encoder_"))],
        [
            "adapter.precision=bf16",
            "adapter.gradient_checkpointing=true",
            "adapter.val_generate=1",
            "train.ema_decay=0",
        ],
    )
    base = "unet" if recipe == "rewas" else "transformer"
    before = {n: snapshot(pipe.components()[n]) for n in (base, "vae")}
    res = Trainer(stage=stage).fit()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
    assert next(pipe.components()[base].parameters()).dtype == torch.bfloat16  # held in bf16 while training
    assert next(next(iter(pipe.adapters.values())).net.parameters()).dtype == torch.float32  # trained in fp32
    folder = next(iter(res.exported.values())).parent
    from safetensors.torch import load_file

    for n, state in before.items():
        (weights,) = (folder / n).glob("*.safetensors")
        back = load_file(str(weights))
        assert all(torch.equal(back[k], v) for k, v in state.items()), n  # the exported base is the fp32 one
    assert json.loads((folder / "model_index.json").read_text())["_foleykit"]["dtype"] == "float32"


def pipe_components(recipe: str) -> list[str]:
    from foleykit.recipes import build_pipeline

    return list(build_pipeline(recipe, size="debug", encoders=False).components())


def test_unknown_precision_is_a_config_error(tmp_path):
    from foleykit.errors import ConfigError

    stage, _ = make(tmp_path, "rewas", "adapter", ["controlnet_energy"], ["adapter.precision=fp8"])
    with pytest.raises(ConfigError, match="precision must be one of"):
        stage.build()
