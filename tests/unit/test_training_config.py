"""Resolved run config: layering, key=value overrides, validation, EMA and the resumable sampler."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from foleykit.errors import ConfigError
from foleykit.training.config import (
    dump_yaml,
    family_of,
    load_yaml,
    parse_overrides,
    parse_value,
    resolve_run_config,
    set_dotted,
)
from foleykit.training.ema import EMA
from foleykit.training.sampler import ResumableBatchSampler


def resolve(overrides=(), stages=("prior", "predictor"), recipe_train=None, level="debug"):
    return resolve_run_config(
        recipe="r", level=level, stages=stages, overrides=overrides, recipe_train=recipe_train
    )


def test_parse_values():
    assert parse_value("1e-4") == 1e-4 and isinstance(parse_value("1e-4"), float)
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("[0.9, 0.99]") == [0.9, 0.99]
    assert parse_value("bf16") == "bf16"
    assert parse_overrides(["+a.b=1", "train.lr=2"]) == [("a.b", 1, True), ("train.lr", 2, False)]
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.lr"])
    with pytest.raises(ConfigError, match="empty key"):
        parse_overrides(["train..lr=1"])


def test_layering_order():
    cfg = resolve()
    # built-in per-stage default beats the shared level default
    assert cfg["stages"]["predictor"]["lr"] == 1e-3 and cfg["stages"]["predictor"]["optimizer"] == "adam"
    assert cfg["stages"]["prior"]["cond_dropout"]["text"] == 0.1
    # shared knobs reach every stage table
    assert cfg["stages"]["prior"]["max_steps"] == cfg["train"]["max_steps"] == 4
    # recipe YAML: its train section beats built-in stage defaults, its stages section beats its train
    cfg = resolve(recipe_train={"train": {"lr": 5e-5}, "stages": {"prior": {"lr": 7e-5}}, "seed": 3})
    assert (
        cfg["stages"]["predictor"]["lr"] == 5e-5 and cfg["stages"]["prior"]["lr"] == 7e-5 and cfg["seed"] == 3
    )
    # command line: train.X reaches every stage, stages.S.X one stage, and a bare S.X too
    cfg = resolve(
        [
            "train.lr=1e-2",
            "stages.prior.lr=2e-2",
            "predictor.batch_size=3",
            "seed=9",
            "prior.cond_dropout.text=0.3",
        ]
    )
    assert cfg["stages"]["predictor"]["lr"] == 1e-2 and cfg["stages"]["prior"]["lr"] == 2e-2
    assert cfg["stages"]["predictor"]["batch_size"] == 3 and cfg["stages"]["prior"]["batch_size"] == 2
    assert cfg["seed"] == 9 and cfg["stages"]["prior"]["cond_dropout"]["text"] == 0.3


def test_overrides_keep_types_and_reject_unknown_keys():
    cfg = resolve(["train.ema_decay=0", "train.max_steps=7.0"])
    assert cfg["stages"]["prior"]["ema_decay"] == 0.0 and isinstance(
        cfg["stages"]["prior"]["ema_decay"], float
    )
    assert cfg["stages"]["prior"]["max_steps"] == 7 and isinstance(cfg["stages"]["prior"]["max_steps"], int)
    with pytest.raises(ConfigError, match="Did you mean train.lr"):
        resolve(["train.lr_=1"])
    with pytest.raises(ConfigError, match="not trained by recipe"):
        resolve(["stages.vocoder.lr=1"])
    with pytest.raises(ConfigError, match="expects a number"):
        resolve(["train.lr=fast"])
    with pytest.raises(ConfigError, match="expects true/false"):
        resolve(["train.tensorboard=3"])
    with pytest.raises(ConfigError, match="expects an integer"):
        resolve(["train.max_steps=2.5"])
    with pytest.raises(ConfigError, match="is a table"):
        resolve(["prior.cond_dropout=0.3"])
    with pytest.raises(ConfigError, match="must name a stage knob"):
        resolve(["stages.prior=1"])
    cfg = resolve(["+train.my_flag=true"])
    assert cfg["train"]["my_flag"] is True and cfg["stages"]["prior"]["my_flag"] is True


@pytest.mark.parametrize(
    "bad,match",
    [
        ("train.batch_size=0", "batch_size"),
        ("train.mixed_precision=fp8", "mixed_precision"),
        ("train.ema_decay=1.0", "ema_decay"),
        ("prior.cond_dropout.text=1.5", "probability"),
        ("train.optimizer=sgd", "optimizer"),
        ("train.keep_checkpoints=0", "keep_checkpoints"),
    ],
)
def test_validation_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        resolve([bad])


def test_unknown_level_stage_and_recipe_keys():
    with pytest.raises(ConfigError, match="config level"):
        resolve(level="huge")
    with pytest.raises(ConfigError, match="unknown family"):
        resolve(stages=["decoder"])
    with pytest.raises(ConfigError, match="unknown keys"):
        resolve(recipe_train={"optim": {}})
    with pytest.raises(ConfigError, match="does not train"):
        resolve(recipe_train={"stages": {"vocoder": {}}})


def test_stage_names_map_to_families():
    cfg = resolve_run_config(
        recipe="r",
        level="debug",
        stages={"denoiser": "prior", "temporal_adapter": "adapter"},
        overrides=["temporal_adapter.unfreeze_base=true"],
    )
    assert cfg["stages"]["denoiser"]["family"] == "prior" and cfg["stages"]["denoiser"]["lr"] == 1e-3
    assert cfg["stages"]["temporal_adapter"]["family"] == "adapter"
    assert cfg["stages"]["temporal_adapter"]["unfreeze_base"] is True
    assert family_of("semantic_adapter") == "adapter" and family_of("denoiser") == "prior"
    assert family_of("x", {"family": "vocoder"}) == "vocoder"
    with pytest.raises(ConfigError, match="unknown family"):
        family_of("mystery")


def test_yaml_round_trip_and_resume_base():
    cfg = resolve(["train.lr=1e-2"])
    again = load_yaml(dump_yaml(cfg))
    assert again == cfg
    # resuming from a saved config: new overrides apply on top, nothing else changes
    resumed = resolve_run_config(
        recipe="r", level="debug", stages=["prior", "predictor"], base=again, overrides=["train.max_steps=9"]
    )
    assert resumed["stages"]["prior"]["max_steps"] == 9 and resumed["stages"]["prior"]["lr"] == 1e-2
    with pytest.raises(ConfigError, match="not a mapping"):
        load_yaml("- a\n- b\n")
    d = {"a": 1}
    with pytest.raises(ConfigError, match="not a table"):
        set_dotted(d, "a.b", 2)


def test_ema_update_rule_and_state():
    m = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, decay=0.9, warmup=False)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.1))  # 0.9 * 0 + 0.1 * 1
    warm = EMA(m, decay=0.999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with ema.applied(m):
        assert torch.allclose(m.weight, torch.full((1, 2), 0.1))
    assert torch.equal(m.weight, torch.ones(1, 2))  # restored
    other = EMA(m, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert (
        other.num_updates == 1
        and other.decay == 0.9
        and torch.equal(other.shadow["weight"], ema.shadow["weight"])
    )
    with pytest.raises(ValueError, match="does not match"):
        EMA(nn.Linear(2, 2), decay=0.5).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="decay"):
        EMA(m, decay=1.0)


def test_sampler_resume_and_sharding():
    s = ResumableBatchSampler(num_items=10, batch_size=3, seed=1)
    assert s.batches_per_epoch == 3
    full = list(s)
    assert (
        sorted(i for b in full for i in b) == sorted(s.epoch_indices(0)) and len(set(s.epoch_indices(0))) == 9
    )
    s.set_position(0, 2)
    assert list(s) == full[2:]
    s.set_position(1, 0)
    assert list(s) != full  # a new permutation per epoch
    # two processes split each epoch without overlap
    a = ResumableBatchSampler(num_items=8, batch_size=2, seed=0, rank=0, world_size=2)
    b = ResumableBatchSampler(num_items=8, batch_size=2, seed=0, rank=1, world_size=2)
    ia, ib = [i for x in a for i in x], [i for x in b for i in x]
    assert sorted(ia + ib) == list(range(8))
    # a dataset smaller than one batch is cycled into one full batch
    tiny = ResumableBatchSampler(num_items=2, batch_size=5, seed=0)
    assert len(list(tiny)) == 1 and len(next(iter(tiny))) == 5
    with pytest.raises(ValueError, match="empty"):
        ResumableBatchSampler(num_items=0, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="out of range"):
        s.set_position(0, 4)
    with pytest.raises(ValueError, match="geometry"):
        ResumableBatchSampler(num_items=3, batch_size=1, seed=0, rank=2, world_size=2)
