"""Timing predictors: shapes, rates, losses (hand values + overfitting), to_control, registry, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from foleykit import registry
from foleykit.config import SequenceConfig
from foleykit.controls.rms import classes_to_rms, gaussian_smoothed_targets
from foleykit.errors import ConfigError
from foleykit.models.predictors import (
    EnergyPredictor,
    EventDetector,
    OnsetHead,
    RMSMapper,
    resize_time,
    window_means,
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SEQ = SequenceConfig()  # 16 kHz, video 25 fps, latent 25 Hz, control 125 Hz, mel 100 Hz, 10 s


def overfit(model, step_loss, steps: int, lr: float = 1e-2) -> tuple[float, float]:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = last = None
    for _ in range(steps):
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    return first, last


# --- energy (ReWaS phi) ------------------------------------------------------------------------------------
def test_energy_shapes_mask_and_resize():
    torch.manual_seed(0)
    model = EnergyPredictor.preset("debug").eval()
    x = torch.randn(2, 12, 16)
    assert model(x).shape == (2, 12)
    padded = torch.cat([x, torch.randn(2, 4, 16)], dim=1)
    mask = torch.tensor([[True] * 12 + [False] * 4] * 2)
    assert torch.allclose(model(padded, mask)[:, :12], model(x), atol=1e-5)
    # ReWaS nearest resize: 4 -> 2 frames keeps frames 0 and 2
    assert torch.equal(
        EnergyPredictor.resize_target(torch.tensor([[0.0, 1, 2, 3]]), 2), torch.tensor([[0.0, 2]])
    )


def test_energy_parameter_counts_match_the_paper():
    """Hand count: proj 590,592 + blocks 7,087,872 each + MLP 107,745. 3 blocks = ReWaS's 22M."""
    with torch.device("meta"):
        two = EnergyPredictor.preset("full")
        three = EnergyPredictor.preset("full", num_layers=3)
    assert two.num_parameters() == 590_592 + 2 * 7_087_872 + 107_745 == 14_874_081
    assert three.num_parameters() == 21_961_953
    assert round(three.num_parameters() / 1e6) == 22


def test_energy_loss_resizes_target_and_overfits():
    torch.manual_seed(0)
    model = EnergyPredictor.preset("debug")
    pred = torch.zeros(1, 2)
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])  # mel rate, 2x the video length
    assert model.loss(pred, target).item() == pytest.approx((1 + 9) / 2)
    assert model.loss(pred, target, torch.tensor([[True, False]])).item() == pytest.approx(1.0)
    x = torch.randn(4, 20, 16)
    energy = torch.randn(4, 80).cumsum(1) / 5  # smooth-ish curves at 4x the video rate
    first, last = overfit(model, lambda: model.loss(model(x), energy), 120)
    assert last < first / 10


def test_energy_to_control_on_mel_grid():
    model = EnergyPredictor.preset("debug")
    out = torch.arange(25, dtype=torch.float32)[None]  # 1 s at 25 fps
    ctrl = model.to_control(out, SEQ)
    assert ctrl.kind == "energy" and ctrl.rate == SEQ.mel_rate == 100
    assert ctrl.num_frames == SEQ.with_duration(1.0).num_energy_frames == 100
    np.testing.assert_array_equal(ctrl.values, np.repeat(np.arange(25, dtype=np.float32), 4))
    with pytest.raises(ConfigError, match="batch of 2"):
        model.to_control(torch.zeros(2, 25), SEQ)


# --- RMS-Mapper (Stable-V2A) --------------------------------------------------------------------------------
def test_rms_upsampling_schedule():
    assert RMSMapper.upsample_sizes(300, 1250) == [600, 1200, 1250]  # Stable-V2A, Greatest Hits
    assert RMSMapper.upsample_sizes(250, 1250) == [500, 1000, 1250]  # the demonstrator
    assert RMSMapper.num_output_frames(SEQ, 250) == SEQ.num_control_frames == 1250
    assert RMSMapper.num_output_frames(SEQ, 50) == 250  # 2 s


def test_rms_shapes_and_full_size():
    torch.manual_seed(0)
    model = RMSMapper.preset("debug").eval()
    logits = model(torch.randn(2, 250, 16), 1250)
    assert logits.shape == (2, 1250, 64)
    with torch.device("meta"):
        full = RMSMapper.preset("full")
    # 3 convs 1024x1024x5 (+bias, BN) + BiLSTM(1024 -> 256, 2 layers) + linear 512 -> 64
    convs = 3 * (1024 * 1024 * 5 + 1024 + 2 * 1024)
    lstm = 2 * 4 * 256 * (1024 + 256 + 2) + 2 * 4 * 256 * (512 + 256 + 2)
    assert full.num_parameters() == convs + lstm + 512 * 64 + 64


def test_rms_silence_threshold_decoding():
    # frame 0: P(0) = 0.4, the rest spread -> argmax says silence, P(sound) = 0.6; frame 1: P(0) = 0.2
    p = torch.tensor([[0.4, 0.1, 0.2, 0.15, 0.15], [0.2, 0.5, 0.1, 0.1, 0.1]])
    logits = p.log()
    plain = RMSMapper.preset("debug", num_classes=5)
    assert plain.silence_threshold is None and plain.decode_classes(logits).tolist() == [0, 1]
    tau = RMSMapper.preset("debug", num_classes=5, silence_threshold=0.5)
    assert tau.decode_classes(logits).tolist() == [2, 1]  # the most likely sounding class
    assert RMSMapper.preset("debug", num_classes=5, silence_threshold=0.3).decode_classes(
        logits
    ).tolist() == [0, 1]
    c = tau.to_control(logits, SEQ.with_duration(2 / SEQ.control_rate))
    np.testing.assert_allclose(c.values, classes_to_rms(np.array([2, 1]), n_classes=5))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="silence_threshold"):
            RMSMapper.preset("debug", silence_threshold=bad)


def test_rms_expected_and_median_decoding():
    # frame 0: mass split between silence and loud classes; frame 1: all on class 2
    p = torch.tensor([[0.45, 0.0, 0.05, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0, 0.0]]).clamp(min=1e-9)
    logits = p.log()
    assert RMSMapper.preset("debug", num_classes=5).decode_classes(logits).tolist() == [4, 2]
    expected = RMSMapper.preset("debug", num_classes=5, decoding="expected")
    assert expected.decode_classes(logits).tolist() == [2, 2]  # 0.05 * 2 + 0.5 * 4 = 2.1
    median = RMSMapper.preset("debug", num_classes=5, decoding="median")
    assert median.decode_classes(logits).tolist() == [2, 2]  # cumulative 0.45, 0.45, 0.5
    c = expected.to_control(logits, SEQ.with_duration(2 / SEQ.control_rate))
    np.testing.assert_allclose(c.values, classes_to_rms(np.array([2, 2]), n_classes=5))
    with pytest.raises(ConfigError, match="decoding must be one of"):
        RMSMapper.preset("debug", decoding="mean")
    with pytest.raises(ConfigError, match="argmax' only"):
        RMSMapper.preset("debug", decoding="expected", silence_threshold=0.3)


def test_rms_expansion_deepens_the_valleys_below_each_clips_peak():
    # clip 0: expected classes 4.0 (peak), 3.0, 2.5, 1.0; clip 1: a quieter clip, peak 2.0
    onehot = torch.eye(5).clamp(min=1e-9)
    half = torch.tensor([0.0, 0.0, 0.5, 0.5, 0.0]).clamp(min=1e-9)  # expected 2.5
    clip0 = torch.stack([onehot[4], onehot[3], half, onehot[1]])
    clip1 = torch.stack([onehot[2], onehot[2], onehot[1], onehot[0]])
    logits = torch.stack([clip0, clip1]).log()
    plain = RMSMapper.preset("debug", num_classes=5, decoding="expected")
    assert plain.expansion == 1.0
    assert plain.decode_classes(logits).tolist() == [[4, 3, 2, 1], [2, 2, 1, 0]]  # 2.5 rounds to even
    two = RMSMapper.preset("debug", num_classes=5, decoding="expected", expansion=2.0)
    # peak - 2 * (peak - c): 4, 2, 1, -2 -> 0; the quieter clip keeps its own peak: 2, 2, 0, -2 -> 0
    assert two.decode_classes(logits).tolist() == [[4, 2, 1, 0], [2, 2, 0, 0]]
    # one clip at a time gives the same (the peak is the clip's, never the batch's)
    assert two.decode_classes(logits[1]).tolist() == [2, 2, 0, 0]
    argmax = RMSMapper.preset("debug", num_classes=5, expansion=3.0)
    assert argmax.decode_classes(logits[0]).tolist() == [4, 1, 0, 0]  # argmax 4, 3, 2 (tie -> 2), 1
    c = two.to_control(logits[0], SEQ.with_duration(4 / SEQ.control_rate))
    np.testing.assert_allclose(c.values, classes_to_rms(np.array([4, 2, 1, 0]), n_classes=5))
    for bad in (0.5, 11.0, "2"):
        with pytest.raises(ConfigError, match="expansion"):
            RMSMapper.preset("debug", expansion=bad)
    # a per-call expansion decodes as a mapper built with it, and leaves the mapper's own unchanged
    assert plain.decode_classes(logits, expansion=2.0).tolist() == two.decode_classes(logits).tolist()
    assert two.decode_classes(logits, expansion=1.0).tolist() == plain.decode_classes(logits).tolist()
    assert two.expansion == 2.0
    c1 = two.to_control(logits[0], SEQ.with_duration(4 / SEQ.control_rate), expansion=1.0)
    np.testing.assert_allclose(c1.values, classes_to_rms(np.array([4, 3, 2, 1]), n_classes=5))
    for bad in (0.5, float("nan"), True):
        with pytest.raises(ConfigError, match="expansion"):
            plain.decode_classes(logits, expansion=bad)


def test_rms_loss_matches_eq10_and_overfits():
    model = RMSMapper.preset("debug", num_classes=8)
    classes = torch.tensor([[3, 0]])
    logits = torch.zeros(1, 2, 8)
    # uniform prediction: CE = -sum_c r(c) log(1/8); r = smoothed targets (eq. 9, W = 2, class 0 excluded)
    w = 1 + 2 * math.exp(-0.5) + 2 * math.exp(-2)
    expected = (w * math.log(8) + 1 * math.log(8)) / 2
    assert model.loss(logits, classes).item() == pytest.approx(expected, rel=1e-5)
    soft = gaussian_smoothed_targets(classes, n_classes=8, window=2)
    assert model.loss(logits, soft).item() == pytest.approx(expected, rel=1e-5)
    assert model.loss(logits, classes, torch.tensor([[False, True]])).item() == pytest.approx(
        math.log(8), rel=1e-5
    )
    with pytest.raises(ConfigError, match="does not fit"):
        model.loss(logits, torch.zeros(1, 3, dtype=torch.long))

    torch.manual_seed(0)
    model = RMSMapper.preset("debug")
    x = torch.randn(2, 10, 16)
    target = torch.randint(1, 64, (2, 50))
    soft = gaussian_smoothed_targets(target, n_classes=64, window=2)
    p = soft / soft.sum(-1, keepdim=True)
    floor = -(soft * torch.log(p.clamp_min(1e-12))).sum(-1).mean().item()  # best achievable CE
    first, last = overfit(model, lambda: model.loss(model(x, 50), target), 150, lr=2e-2)
    assert last - floor < 0.25 * (first - floor)


def test_rms_to_control_decodes_mu_law():
    model = RMSMapper.preset("debug")
    classes = np.array([0, 5, 63, 40])
    logits = torch.full((1, 4, 64), -10.0)
    logits[0, torch.arange(4), torch.from_numpy(classes)] = 10.0
    ctrl = model.to_control(logits, SEQ)
    assert ctrl.kind == "rms" and ctrl.rate == SEQ.control_rate == 125 and ctrl.num_frames == 4
    np.testing.assert_allclose(ctrl.values, classes_to_rms(classes))
    assert ctrl.values[0] == 0.0 and ctrl.values[2] > ctrl.values[3] > ctrl.values[1] > 0


# --- onset head (STA-V2A) -----------------------------------------------------------------------------------
def test_window_means_hand_values():
    x = torch.tensor([1.0, 2, 3, 4, 5])[None, :, None]
    assert torch.allclose(window_means(x, 1)[0, :, 0], torch.tensor([1.5, 2, 3, 4, 4.5]))
    assert torch.allclose(window_means(x, 8)[0, :, 0], torch.full((5,), 3.0))


def test_onset_head_shapes_and_features():
    torch.manual_seed(0)
    head = OnsetHead.preset("debug")
    logits, feats = head(torch.randn(2, 250, 16), SEQ.num_latent_frames, return_features=True)
    assert logits.shape == (2, 250) and feats.shape == (2, 250, 8)
    assert head(torch.randn(1, 40, 16), 256).shape == (1, 256)  # STA-V2A: 40 CAVP frames -> 256 latents
    assert torch.equal(resize_time(torch.tensor([[1.0, 2.0]]), 4), torch.tensor([[1.0, 1.0, 2.0, 2.0]]))
    with pytest.raises(ConfigError, match="positive integer"):
        head(torch.randn(1, 40, 16), 0)


def test_onset_loss_pos_weight_and_overfit():
    head = OnsetHead.preset("debug")
    zeros = torch.zeros(1, 4)
    ones = torch.ones(1, 4)
    assert head.loss(zeros, ones).item() == pytest.approx(math.log(2))
    assert head.loss(zeros, ones, pos_weight=5.0).item() == pytest.approx(5 * math.log(2))
    assert head.loss(zeros, torch.zeros(1, 4), pos_weight=5.0).item() == pytest.approx(math.log(2))
    with pytest.raises(ConfigError, match="target shape"):
        head.loss(zeros, torch.zeros(1, 5))
    torch.manual_seed(0)
    x = torch.randn(4, 20, 16)
    target = (torch.rand(4, 20) < 0.2).float()
    first, last = overfit(head, lambda: head.loss(head(x, 20), target), 150)
    assert last < first / 5


def test_onset_to_control_peaks():
    head = OnsetHead.preset("debug")
    prob = torch.tensor([0.1, 0.7, 0.9, 0.2, 0.3, 0.6, 0.6, 0.1])
    ctrl = head.to_control(torch.logit(prob)[None], SEQ)
    assert ctrl.kind == "onsets" and ctrl.rate == SEQ.latent_rate == 25 and ctrl.num_frames == 8
    np.testing.assert_array_equal(ctrl.values, [0, 0, 1, 0, 0, 1, 0, 0])  # plateau: first frame
    probs = head.to_control(torch.logit(prob), SEQ, mode="probabilities")
    np.testing.assert_allclose(probs.values, prob.numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="mode"):
        head.to_control(prob, SEQ, mode="max")


# --- event detector (Rhythmic Foley) ------------------------------------------------------------------------
def test_event_detector_shapes_targets_and_overfit():
    torch.manual_seed(0)
    det = EventDetector.preset("debug")
    assert det(torch.randn(3, 30, 16)).shape == (3, 30)
    env = torch.tensor([[0.0, 0, 0, 0, 0, 0, 0, 1, 0, 0]])  # 5 envelope frames per video frame
    assert torch.equal(EventDetector.presence_targets(env, 2, threshold=0.5), torch.tensor([[0.0, 1.0]]))
    x = torch.randn(4, 24, 16)
    target = (torch.rand(4, 24) < 0.4).float()
    first, last = overfit(det, lambda: det.loss(det(x), target, pos_weight=1.5), 150)
    assert last < first / 5


def test_event_to_control():
    det = EventDetector.preset("debug")
    ctrl = det.to_control(torch.logit(torch.tensor([0.2, 0.8, 0.5, 0.4])), SEQ)
    assert ctrl.kind == "events" and ctrl.rate == SEQ.video_fps
    np.testing.assert_array_equal(ctrl.values, [0, 1, 1, 0])
    with pytest.raises(ConfigError, match="binary or probabilities"):
        det.to_control(torch.zeros(4), SEQ, mode="peaks")


# --- registry and errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [("energy", EnergyPredictor), ("rms", RMSMapper), ("onsets", OnsetHead), ("events", EventDetector)],
)
def test_registry_sizes(name, cls):
    model = registry.build("timing_predictor", name, size="debug", in_dim=7)
    assert type(model) is cls and model.in_dim == 7 and model.kind == name
    with pytest.raises(ConfigError, match="unknown size"):
        registry.build("timing_predictor", name, size="huge")
    with pytest.raises(ConfigError, match="B x T_v x 7"):
        model(torch.randn(1, 5, 8), 10) if name in ("rms", "onsets") else model(torch.randn(1, 5, 8))
    with pytest.raises(ConfigError, match="zero video frames"):
        model(torch.randn(1, 0, 7), 10) if name in ("rms", "onsets") else model(torch.randn(1, 0, 7))


def test_constructor_errors():
    with pytest.raises(ConfigError, match="divisible"):
        EnergyPredictor(in_dim=4, hidden_dim=30, num_heads=8)
    with pytest.raises(ConfigError, match="odd"):
        RMSMapper(in_dim=4, kernel_size=4)
    with pytest.raises(ConfigError, match="upsample_mode"):
        RMSMapper(in_dim=4, upsample_mode="cubic")
    with pytest.raises(ConfigError, match="half-widths"):
        OnsetHead(in_dim=4, windows=(0, 2))
    with pytest.raises(ConfigError, match="odd"):
        EventDetector(in_dim=4, kernel_size=2)


def test_rms_mapper_reads_only_its_input_groups():
    """``ignore_channels`` (from the recipe's ``input_groups``): what the ignored channels hold changes nothing,
    the channels it reads still do; bad ranges and unknown groups are refused."""
    from foleykit.recipes import build_pipeline
    from foleykit.vision.encoder import group_slices

    pipe = build_pipeline("foleykit_demo", size="debug")
    m = pipe.predictors["rms"].eval()
    g = group_slices()
    assert m.ignore_channels == [
        [g["objects"].start, g["objects"].stop],
        [g["embedding"].start, g["embedding"].stop],
    ]
    # a plan-only build (no encoder built) resolves the same groups from the registered builder
    meta = build_pipeline("foleykit_demo", size="debug", meta=True)
    assert meta.predictors["rms"].ignore_channels == m.ignore_channels
    torch.manual_seed(0)
    x = torch.randn(1, 20, m.in_dim)
    seen = x.clone()
    seen[..., g["embedding"]] = 3.0
    seen[..., g["objects"]] = -1.0
    with torch.no_grad():
        assert torch.equal(m(x, 100), m(seen, 100))
        moved = x.clone()
        moved[..., g["pose"]] += 1.0
        assert not torch.allclose(m(x, 100), m(moved, 100))
    with pytest.raises(ConfigError, match="ignore_channels"):
        RMSMapper.preset("debug", in_dim=16, ignore_channels=[[10, 20]])
    from foleykit.recipes import load_recipe

    rec = load_recipe("foleykit_demo", size="debug")
    rec["predictors"]["rms"]["input_groups"] = ["motion", "sound"]
    with pytest.raises(ConfigError, match="unknown group"):
        build_pipeline(rec)
