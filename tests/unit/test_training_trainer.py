"""The generic trainer on a toy stage: learning, exact resume, accumulation, EMA, GAN groups, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from foleykit.errors import ConfigError
from foleykit.training.checkpoint import list_checkpoints, read_checkpoint_config
from foleykit.training.config import resolve_run_config
from foleykit.training.stages.base import Stage, StageContext, StageModules
from foleykit.training.trainer import Trainer, TrainingDivergedError, read_metrics


class LinearData(Dataset):
    """y = x @ w_true + 0.5, 12 items of 3 features."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(12, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


class Regressor(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.drop(x)).squeeze(-1)


class ToyStage(Stage):
    """Regression with dropout (global RNG) and input noise (the run's generator): both must resume."""

    name = "toy"

    def __init__(
        self,
        ctx: StageContext,
        *,
        dropout: float = 0.1,
        noise: float = 0.05,
        gan: bool = False,
        nan_at: int | None = None,
    ) -> None:
        super().__init__(ctx)
        self.dropout, self.noise, self.gan, self.nan_at = dropout, noise, gan, nan_at

    def build(self) -> StageModules:
        trainable = {"main": Regressor(self.dropout)}
        if self.gan:
            trainable = {"disc": nn.Linear(1, 1), **trainable}
        return StageModules(trainable=trainable, frozen={"scale": nn.Linear(1, 1)})

    def groups(self) -> list[str]:
        return ["disc", "main"] if self.gan else ["main"]

    def train_dataset(self) -> Dataset:
        return LinearData()

    def val_dataset(self) -> Dataset:
        return LinearData()

    def loss(self, inputs, group):
        b = inputs.batch
        x = b["x"] + self.noise * torch.randn(b["x"].shape, generator=inputs.generator)
        if group == "disc":
            pred = inputs.models["main"](x)
            inputs.scratch["pred"] = pred
            d = inputs.models["disc"](torch.stack([pred.detach(), b["y"]]).unsqueeze(-1))
            return ((d[0] - 0.0) ** 2 + (d[1] - 1.0) ** 2).mean(), {}
        pred = inputs.scratch.get("pred")
        if pred is None:
            pred = inputs.models["main"](x)
        mse = ((pred - b["y"]) ** 2).mean()
        if self.nan_at is not None and inputs.step >= self.nan_at:
            mse = mse * float("nan")
        loss = mse
        if self.gan:
            loss = loss + 0.01 * ((inputs.models["disc"](pred.unsqueeze(-1)) - 1.0) ** 2).mean()
        return loss, {"mse": float(mse.detach())}

    def validate(self, model, frozen, batches, generator):
        errs = [((model(b["x"]) - b["y"]) ** 2).mean() for b in batches]
        # consume RNG on purpose: validation must not disturb training streams
        torch.randn(100)
        return {"mse": float(torch.stack(errs).mean())}

    def export(self, model, frozen, folder):
        from safetensors.torch import save_file

        out = folder / "toy"
        out.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
        (out / "config.json").write_text(json.dumps({"_class_name": "Regressor"}))
        return {"toy": out}


def make_stage(tmp_path: Path, overrides: list[str], **kw) -> ToyStage:
    cfg = resolve_run_config(
        recipe="toy", level="debug", stages=["predictor"], overrides=["train.tensorboard=false", *overrides]
    )
    table = cfg["stages"]["predictor"]
    ctx = StageContext(run_config=cfg, cfg=table, run_dir=tmp_path, stage_dir=tmp_path / "toy")
    return ToyStage(ctx, **kw)


def weights(result) -> dict[str, torch.Tensor]:
    return load_file(result.exported["toy"] / "model.safetensors")


def ckpt_weights(tmp: Path) -> dict[str, torch.Tensor]:
    return load_file(list_checkpoints(tmp / "toy")[-1][1] / "model.safetensors")


BASE = ["train.max_steps=6", "train.ckpt_every=2", "train.lr=0.05", "train.batch_size=4"]


def test_learns_and_writes_checkpoints(tmp_path):
    res = Trainer(
        stage=make_stage(
            tmp_path,
            BASE
            + [
                "train.max_steps=40",
                "train.ckpt_every=20",
                "train.max_grad_norm=0",
                "train.ema_decay=0.5",
                "train.lr=0.2",
            ],
        )
    ).fit()
    assert res.steps == 40 and len(res.step_times) == 40
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.2 * losses[0]
    ckpts = list_checkpoints(tmp_path / "toy")
    assert [s for s, _ in ckpts] == [20, 40]  # keep_checkpoints=2 at debug
    last = ckpts[-1][1]
    for f in (
        "model.safetensors",
        "optimizer.bin",
        "scheduler.bin",
        "random_states_0.pkl",
        "custom_checkpoint_0.pkl",
        "custom_checkpoint_1.pkl",
        "rank_state_0.pt",
        "config.yaml",
        "trainer_state.json",
        "model/toy/model.safetensors",
        "model/toy/config.json",
    ):
        assert (last / f).is_file(), f
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 40 and state["stage"] == "toy"
    assert read_checkpoint_config(last)["stages"]["predictor"]["lr"] == 0.2
    assert (tmp_path / "toy" / "model" / "toy" / "model.safetensors").is_file()
    recs = read_metrics(tmp_path / "toy")
    assert [r["step"] for r in recs] == list(range(1, 41))
    assert read_metrics(tmp_path / "toy", "val")[-1]["mse"] < 0.2
    assert not (tmp_path / "toy" / "tensorboard").exists()  # tensorboard=false


class Crash(RuntimeError):
    """A simulated crash (raised by the ``on_step`` callback)."""


def crash_at(k: int):
    def on_step(step: int) -> None:
        if step == k:
            raise Crash(step)

    return on_step


@pytest.mark.parametrize("fail_after", [3, 4])
def test_resume_is_bit_identical(tmp_path, fail_after):
    ref = Trainer(stage=make_stage(tmp_path / "ref", BASE)).fit()
    with pytest.raises(Crash):
        Trainer(stage=make_stage(tmp_path / "run", BASE), on_step=crash_at(fail_after)).fit()
    # a checkpoint at step 4 exists only if the failure came after it
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "toy")][-1] == (4 if fail_after >= 4 else 2)
    res = Trainer(stage=make_stage(tmp_path / "run", BASE)).fit(resume=True)
    assert res.steps == 6
    a, b = weights(ref), weights(res)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # EMA weights
    a, b = ckpt_weights(tmp_path / "ref"), ckpt_weights(tmp_path / "run")
    assert all(torch.equal(a[k], b[k]) for k in a)  # raw weights
    # the resumed run re-logged the steps after its checkpoint exactly once
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "toy")] == list(range(1, 7))
    ref_loss = [r["loss"] for r in read_metrics(tmp_path / "ref" / "toy")]
    assert [r["loss"] for r in read_metrics(tmp_path / "run" / "toy")] == ref_loss


def test_resume_of_finished_run_is_a_no_op_and_fresh_run_refuses_existing(tmp_path):
    first = Trainer(stage=make_stage(tmp_path, BASE)).fit()
    again = Trainer(stage=make_stage(tmp_path, BASE)).fit(resume=True)
    assert again.steps == 6 and again.step_times == []
    assert all(torch.equal(weights(first)[k], weights(again)[k]) for k in weights(first))
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(stage=make_stage(tmp_path, BASE)).fit()


def test_validation_does_not_change_training(tmp_path):
    a = Trainer(stage=make_stage(tmp_path / "a", BASE + ["train.val_every=1"])).fit()
    b = Trainer(stage=make_stage(tmp_path / "b", BASE + ["train.val_every=0"])).fit()
    assert len(read_metrics(tmp_path / "a" / "toy", "val")) == 6
    assert len(read_metrics(tmp_path / "b" / "toy", "val")) == 1  # the final validation only
    assert all(torch.equal(weights(a)[k], weights(b)[k]) for k in weights(a))


def test_gradient_accumulation_matches_large_batch(tmp_path):
    common = ["train.max_steps=3", "train.ema_decay=0", "train.max_grad_norm=0"]
    big = Trainer(
        stage=make_stage(tmp_path / "big", common + ["train.batch_size=4"], dropout=0.0, noise=0.0)
    ).fit()
    acc = Trainer(
        stage=make_stage(
            tmp_path / "acc", common + ["train.batch_size=2", "train.grad_accum=2"], dropout=0.0, noise=0.0
        )
    ).fit()
    wa, wb = weights(big), weights(acc)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    ema_off = make_stage(tmp_path / "x", common)
    assert ema_off.cfg["ema_decay"] == 0


def test_ema_export_differs_from_raw_weights(tmp_path):
    res = Trainer(stage=make_stage(tmp_path, BASE + ["train.ema_decay=0.5"])).fit()
    raw, ema = ckpt_weights(tmp_path), weights(res)
    assert not torch.equal(raw["lin.weight"], ema["lin.weight"])


def test_two_optimizer_groups(tmp_path):
    res = Trainer(
        stage=make_stage(tmp_path, BASE + ["train.max_steps=30", "train.ckpt_every=30"], gan=True)
    ).fit()
    rec = res.history
    assert "loss/disc" in rec[-1] and rec[-1]["mse"] < 0.3 * rec[0]["mse"]
    ck = list_checkpoints(tmp_path / "toy")[-1][1]
    assert (ck / "model_1.safetensors").is_file() and (ck / "optimizer_1.bin").is_file()


def test_nan_loss_stops_with_clear_error(tmp_path):
    with pytest.raises(TrainingDivergedError, match="train.lr"):
        Trainer(stage=make_stage(tmp_path, BASE, nan_at=2)).fit()


def test_group_mismatch_is_rejected(tmp_path):
    stage = make_stage(tmp_path, BASE)
    stage.groups = lambda: ["main", "disc"]
    with pytest.raises(ValueError, match="must end with 'main'"):
        Trainer(stage=stage).fit()


def test_tensorboard_logs_when_enabled(tmp_path):
    pytest.importorskip("tensorboard")
    Trainer(stage=make_stage(tmp_path, BASE + ["train.tensorboard=true", "train.max_steps=2"])).fit()
    assert any((tmp_path / "toy" / "tensorboard").iterdir())


def test_tensorboard_missing_falls_back(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "torch.utils.tensorboard":
            raise ImportError("no tensorboard")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    Trainer(stage=make_stage(tmp_path, BASE + ["train.tensorboard=true", "train.max_steps=2"])).fit()
    assert not (tmp_path / "toy" / "tensorboard").exists()
    assert len(read_metrics(tmp_path / "toy")) == 2
