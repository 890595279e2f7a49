"""Every stage family learns: on one fixed tiny batch, with the same random draws (noise, timesteps, segments,
condition dropout) every fourth step and no weight decay (which alone would move the weights), the loss
falls, and every trainable parameter receives a gradient. A loss multiplied by 0 (or detached from a
component) fails these tests."""

from __future__ import annotations

import pytest
import torch
from test_training_stages import make

from foleykit.training.stages.base import StepInputs

DROP = "{text: 0.5, video: 0.5, audio: 0.5}"
#: Seeds the steps' random draws cycle through.
CYCLE = 4
#: Parameters that legitimately get no gradient, with the reason.
NO_GRADIENT = {
    # Stable Audio Open's seconds_start conditioner: a clip window always starts at 0 s, and the Fourier
    # features of 0 do not depend on their weights (sin(0 * w), cos(0 * w)).
    "start_number_conditioner.time_positional_embedding",
}

# (recipe, family, trainable components, overrides, steps, learning rate, batch size, required loss ratio)
CASES = {
    "autoencoder-mel": ("vta_ldm", "autoencoder", ["vae"], [], 20, 1e-3, 2, 0.95),
    "autoencoder-waveform": ("stable_v2a", "autoencoder", ["vae"], [], 20, 1e-3, 2, 0.9),
    "vocoder": ("foleykit_demo", "vocoder", ["vocoder"], [], 20, 1e-3, 2, 0.9),
    "vocoder-adversarial": (
        "foleykit_demo",
        "vocoder",
        ["vocoder"],
        ["stages.vocoder.adversarial=true"],
        20,
        1e-3,
        2,
        0.9,
    ),
    "predictor-rms": ("stable_v2a", "predictor", ["predictor_rms"], [], 20, 1e-3, 2, 0.98),
    "predictor-energy": ("rewas", "predictor", ["predictor_energy"], [], 20, 1e-2, 2, 0.98),
    "predictor-onsets": ("sta_v2a", "predictor", ["predictor_onsets"], [], 20, 1e-3, 2, 0.95),
    "predictor-events": ("rhythmic_foley", "predictor", ["predictor_events"], [], 20, 1e-3, 2, 0.9),
    "prior-dit": (
        "foleykit_demo",
        "prior",
        ["transformer", "projection_model", "condition_assembler", "video_condition"],
        [f"stages.prior.cond_dropout={DROP}"],
        20,
        1e-3,
        4,
        0.95,
    ),
    "prior-unet": (
        "vta_ldm",
        "prior",
        ["unet", "condition_assembler", "video_condition"],
        [f"stages.prior.cond_dropout={DROP}"],
        20,
        1e-3,
        4,
        0.9,
    ),
    "semantic-pooling": (
        "vta_ldm",
        "semantic",
        ["video_condition", "condition_assembler"],
        [f"stages.semantic.cond_dropout={DROP}"],
        30,
        1e-2,
        4,
        0.99,
    ),
    "semantic-events": ("rhythmic_foley", "semantic", ["predictor_events"], [], 20, 1e-3, 2, 0.9),
    "adapter-unet": (
        "rewas",
        "adapter",
        ["controlnet_energy", "control_encoder_energy"],
        [],
        20,
        1e-3,
        2,
        0.97,
    ),
    "adapter-dit": (
        "stable_v2a",
        "adapter",
        ["controlnet_rms", "control_encoder_rms"],
        [],
        20,
        1e-3,
        2,
        0.9,
    ),
}


#: Initialisation seed per case (default 0): with seed 0 the debug ReWaS energy head (MLP 16-8-4-1) starts
#: with its 4-unit ReLU layer inactive on every frame of these clips, so nothing before it gets a gradient.
INIT_SEED = {"predictor-energy": 1}


def train_fixed(stage, *, steps: int, lr: float, batch_size: int):
    """Train a stage's groups as the trainer does (group order, shared scratch per step) on one batch; the
    random draws alternate between two fixed seeds (so that condition dropout both drops and keeps each
    condition). Returns (main losses of the even steps, {group: parameters that never had a non-zero
    gradient})."""
    mods = stage.build()
    ds = stage.train_dataset()
    batch = stage.collate([ds[i] for i in range(batch_size)])
    models = mods.trainable
    params = {g: [(k, p) for k, p in models[g].named_parameters() if p.requires_grad] for g in stage.groups()}
    opts = {g: torch.optim.Adam([p for _, p in ps], lr=lr, weight_decay=0.0) for g, ps in params.items()}
    for m in models.values():
        m.train()
    reached = {g: set() for g in params}
    losses = []
    for step in range(steps):
        scratch: dict = {}
        for g in stage.groups():
            if g != "main" and not stage.group_active(g, step):
                continue
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            inputs = StepInputs(
                models=models,
                frozen=mods.frozen,
                batch=batch,
                generator=torch.Generator().manual_seed(step % CYCLE),
                step=step,
                scratch=scratch,
            )
            loss, _ = stage.loss(inputs, g)
            loss.backward()
            reached[g] |= {k for k, p in params[g] if p.grad is not None and bool(p.grad.abs().sum() > 0)}
            opts[g].step()
            if g == "main" and step % CYCLE == 0:
                losses.append(float(loss.detach()))
    missing = {
        g: sorted(k for k, _ in ps if k not in reached[g] and not any(n in k for n in NO_GRADIENT))
        for g, ps in params.items()
    }
    return losses, missing


@pytest.mark.parametrize("case", list(CASES))
def test_stage_learns_on_a_fixed_batch(tmp_path, case):
    recipe, family, trainable, overrides, steps, lr, batch_size, ratio = CASES[case]
    torch.manual_seed(INIT_SEED.get(case, 0))
    stage, _ = make(tmp_path, recipe, family, trainable, ["train.weight_decay=0", *overrides])
    losses, missing = train_fixed(stage, steps=steps, lr=lr, batch_size=batch_size)
    assert losses[0] > 0 and losses[-1] < ratio * losses[0], (
        f"{case}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    )
    assert all(not m for m in missing.values()), f"{case}: no gradient reached {missing}"
