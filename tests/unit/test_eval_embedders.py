"""Embedders: real loading code tested with tiny random checkpoints saved in the published layouts.

PANNs CNN14 (``{"model": state_dict, ...}`` with a pickled numpy sampler state, like the zenodo files),
torchvggish (a bare state dict + a numpy PCA file), CLAP (a tiny ``ClapConfig`` saved with
``save_pretrained``), and the packaged aisfx model (real weights).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foleykit import registry
from foleykit.errors import ConfigError, EvaluationError, ModelError, WeightsNotFoundError
from foleykit.evaluation.embedders import panns as P
from foleykit.evaluation.embedders import vggish as V


def _sine(freq: float, sr: int, seconds: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


# --- PANNs CNN14 ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn14_file(tmp_path_factory):
    torch.manual_seed(0)
    model = P.Cnn14(widths=(4, 4, 4, 4, 4, 8), classes_num=5)
    path = tmp_path_factory.mktemp("panns") / "Cnn14_mAP=0.431.pth"
    # the published files pickle the data sampler's numpy state next to the weights
    torch.save({"iteration": 0, "model": model.state_dict(), "sampler": {"indexes": np.arange(3)}}, path)
    return path, model


def test_panns_front_end_matches_librosa():
    import librosa

    m = P.Cnn14(widths=(4, 4, 4, 4, 4, 8), classes_num=5)
    x = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    power = m.spectrogram_extractor(torch.from_numpy(x)[None])[0, 0].detach().numpy()  # (F, 513)
    ref = (
        np.abs(
            librosa.stft(x.astype(np.float64), n_fft=1024, hop_length=320, center=True, pad_mode="reflect")
        )
        ** 2
    )
    np.testing.assert_allclose(power, ref.T, rtol=1e-3, atol=1e-4)
    logmel = m.logmel_extractor(torch.from_numpy(power)[None, None])[0, 0].detach().numpy()
    mel = ref.T @ librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    np.testing.assert_allclose(logmel, 10 * np.log10(np.maximum(mel, 1e-10)), atol=2e-3)


def test_panns_loads_published_layout(cnn14_file):
    path, model = cnn14_file
    emb = P.PannsEmbedder(checkpoint=path)
    assert (emb.sample_rate, emb.dim, emb.num_classes, emb.has_logits) == (32000, 8, 5, True)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(emb.model.state_dict()[k], v)
    x = _sine(440, 32000, 2.0)
    e, logits = emb.embed_with_logits(x)
    assert e.shape == (1, 8) and logits.shape == (5,)
    np.testing.assert_allclose(
        logits, emb.model.fc_audioset(torch.from_numpy(e)).detach().numpy()[0], rtol=1e-5, atol=1e-6
    )
    assert np.all(e >= 0)  # embedding = relu(fc1(.))
    np.testing.assert_array_equal(emb.embed(x), e)
    assert emb.embed(x[:100]).shape == (1, 8)  # shorter than 32 frames: zero-padded
    # a folder holding the published name works too; so does the registry
    assert registry.build("embedder", "panns", checkpoint=path.parent).path == path


def test_panns_missing_and_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"(?s)Cnn14_mAP=0.431.pth.*zenodo.org/record/3576403"):
        P.PannsEmbedder()
    with pytest.raises(WeightsNotFoundError, match="Cnn14_16k_mAP=0.438.pth"):
        P.PannsEmbedder(sample_rate=16000, checkpoint=tmp_path)
    with pytest.raises(ConfigError):
        P.PannsEmbedder(sample_rate=44100)
    bad = tmp_path / "bad.pth"
    torch.save({"fc1.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ModelError, match="not a PANNs CNN14 checkpoint"):
        P.PannsEmbedder(checkpoint=bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="cannot read"):
        P.PannsEmbedder(checkpoint=junk)


# --- VGGish ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vggish_files(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("vggish")
    model = V.VGGish(widths=(2, 2, 2, 2, 2, 4), hidden=8, dim=6)
    torch.save(model.state_dict(), d / V.CHECKPOINT)
    torch.save({"pca_eigen_vectors": np.eye(6), "pca_means": np.zeros(6)}, d / V.PCA_PARAMS)
    return d, model


def test_vggish_front_end():
    m = V.mel_matrix()
    assert m.shape == (257, 64) and np.all(m[0] == 0) and m.max() <= 1.0
    # a 1 kHz tone peaks in the band whose HTK-mel centre is nearest to mel(1000)
    centres = np.linspace(V._hz_to_mel(125.0), V._hz_to_mel(7500.0), 66)[1:-1]
    patches = V.log_mel_examples(_sine(1000, 16000, 1.0))
    assert patches.shape == (1, 96, 64)  # 1 + (16000 - 400) // 160 = 98 frames -> one 96-frame patch
    assert int(np.argmax(patches[0].mean(axis=0))) == int(np.argmin(np.abs(centres - V._hz_to_mel(1000.0))))
    assert V.log_mel_examples(np.zeros(100)).shape == (1, 96, 64)  # short clips are padded to one patch
    np.testing.assert_allclose(V.log_mel_examples(np.zeros(100)), np.log(0.01), rtol=1e-6)


def test_vggish_loads_published_layout(vggish_files):
    d, model = vggish_files
    emb = V.VGGishEmbedder(checkpoint=d)
    x = _sine(440, 16000, 2.0)
    e = emb.embed(x)
    assert e.shape == (2, 6)  # 198 frames -> 2 patches of 0.96 s
    patches = torch.from_numpy(V.log_mel_examples(x))[:, None]
    with torch.no_grad():
        np.testing.assert_allclose(e, model(patches).numpy(), rtol=1e-5, atol=1e-6)  # last ReLU dropped
        relu = model(patches, final_activation=True).numpy()
    post = V.VGGishEmbedder(checkpoint=d / V.CHECKPOINT, pca_params=d, postprocess=True).embed(x)
    np.testing.assert_allclose(post, np.round((np.clip(relu, -2, 2) + 2) * 63.75), atol=1e-4)  # identity PCA
    assert not emb.has_logits
    with pytest.raises(EvaluationError, match="no classifier logits"):
        emb.logits(x)


def test_vggish_missing_weights(tmp_path, monkeypatch, vggish_files):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"(?s)vggish-10086976.pth.*torchvggish"):
        V.VGGishEmbedder()
    d, _ = vggish_files
    with pytest.raises(WeightsNotFoundError, match="vggish_pca_params"):
        V.VGGishEmbedder(checkpoint=d, pca_params=tmp_path, postprocess=True)


# --- CLAP -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    d = tmp_path_factory.mktemp("clap")
    vocab = {
        t: i
        for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *"abcdefghijklmnopqrstuvwxyz", "Ġ"])
    }
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = RobertaTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    cfg = ClapConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 80,
            "projection_dim": 16,
        },
        audio_config={
            "patch_embeds_hidden_size": 8,
            "hidden_size": 64,
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [1, 1, 1, 1],
            "window_size": 8,
            "projection_dim": 16,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    model_dir = d / "clap-tiny"
    ClapModel(cfg).save_pretrained(model_dir)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tok).save_pretrained(model_dir)
    return model_dir


def test_clap_embedder_and_scores(clap_folder):
    from foleykit.evaluation.embedders.clap import ClapEmbedder
    from foleykit.evaluation.metrics import clap_score

    emb = ClapEmbedder(path=clap_folder)
    assert (emb.sample_rate, emb.dim) == (48000, 16)
    x = _sine(440, 48000, 12.0)  # two chunks: 10 s + 2 s
    e = emb.embed(x)
    assert e.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    t = emb.embed_text(["a dog barks", "rain"])
    assert t.shape == (2, 16)
    scores = clap_score.clap_text_audio(emb, ["a dog barks"], [x[:48000]], 48000)
    assert scores.shape == (1,) and -1.0 <= scores[0] <= 1.0
    expected = float(t[0] @ emb.clip_embedding(x[:48000]))
    assert scores[0] == pytest.approx(expected, abs=1e-5)
    same = clap_score.clap_audio_audio(emb, [x[:16000]], [x[:16000]], 16000)  # resampled to 48 kHz
    assert same[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(EvaluationError):
        clap_score.clap_text_audio(emb, ["a", "b"], [x], 48000)
    with pytest.raises(EvaluationError):
        emb.embed_text([])


def test_clap_missing_weights(tmp_path, clap_folder):
    from foleykit.evaluation.embedders.clap import ClapEmbedder

    with pytest.raises(WeightsNotFoundError, match="clap-htsat-unfused"):
        ClapEmbedder()
    with pytest.raises(WeightsNotFoundError):
        ClapEmbedder(path=tmp_path / "absent")
    no_proc = tmp_path / "no-processor"
    no_proc.mkdir()
    for f in ("config.json", "model.safetensors"):
        (no_proc / f).write_bytes((clap_folder / f).read_bytes())
    with pytest.raises(WeightsNotFoundError, match="ClapProcessor"):
        ClapEmbedder(path=no_proc)


# --- aisfx (packaged weights) ---------------------------------------------------------------------------------
def test_aisfx_embedder_blocks_and_logits():
    from foleykit.encoders.audio import aisfx_embed
    from foleykit.evaluation.embedders.aisfx import AisfxEmbedder

    emb = AisfxEmbedder()
    assert (emb.sample_rate, emb.dim, emb.num_classes) == (44100, 512, 69)
    x = _sine(440, 44100, 5.0)  # 1 + 220500 // 1024 = 216 frames -> (216 - 100) // 50 + 1 = 3 blocks
    e, logits = emb.embed_with_logits(x)
    assert e.shape == (3, 512) and logits.shape == (69,)
    np.testing.assert_allclose(e, aisfx_embed(x, 44100, model=emb.model).numpy(), rtol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(
            logits, emb.head(torch.from_numpy(e)).mean(0).numpy(), rtol=1e-5, atol=1e-6
        )
    assert emb.embed(x[:4410]).shape == (1, 512)  # 0.1 s: zero-padded to one block
    with pytest.raises(ConfigError, match="ucsMixed"):
        AisfxEmbedder(head="nope")
    assert AisfxEmbedder(head=None).has_logits is False
    with pytest.raises(EvaluationError):
        emb.embed(np.zeros((2, 10), np.float32))


def test_clap_score_in_the_suite(clap_folder):
    from foleykit.evaluation import evaluate
    from foleykit.evaluation.embedders.clap import ClapEmbedder

    x = _sine(440, 48000, 1.0)
    rep = evaluate(
        {"a": x}, sample_rate=48000, metrics="clap", prompts={"a": "a dog barks"}, clap_model=str(clap_folder)
    )
    emb = ClapEmbedder(path=clap_folder)
    assert rep["clap"] == pytest.approx(
        float(emb.embed_text(["a dog barks"])[0] @ emb.clip_embedding(x)), abs=1e-5
    )
    assert rep.config["protocols"]["clap"]["model"] == str(clap_folder)
    with pytest.raises(EvaluationError, match="no prompt for 1 clip"):
        evaluate(
            {"a": x, "b": x},
            sample_rate=48000,
            metrics="clap",
            prompts={"a": "x"},
            clap_model=str(clap_folder),
        )


def test_default_metrics_skip_unavailable_embedder(tmp_path, monkeypatch):
    from foleykit.evaluation import evaluate

    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    x = _sine(440, 16000, 1.0)
    rep = evaluate({"a": x}, {"a": x}, sample_rate=16000, embedder="vggish")  # no VGGish weights here
    assert "fd" not in rep.config["metrics"] and "aa_align" in rep.config["metrics"]
    assert "vggish-10086976.pth" in rep.config["not_run"][0]
    with pytest.raises(WeightsNotFoundError):
        evaluate({"a": x}, {"a": x}, sample_rate=16000, embedder="vggish", metrics="fd")
    with pytest.raises(ConfigError, match="no metric can run"):
        evaluate({"a": x}, sample_rate=16000, embedder="vggish")


class _Payload:
    """Unpickling this runs code (writes a marker file): what a malicious checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_embedder_checkpoints_need_trust_for_more_than_numpy_data(cnn14_file, tmp_path):
    """Published files that pickle numpy arrays load as plain data; anything that needs a full unpickling is
    refused with one message naming --trust-pickle, and nothing in the file runs."""
    path, model = cnn14_file
    P.PannsEmbedder(checkpoint=path)  # numpy sampler state: plain data, no trust needed
    state = model.state_dict()
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    torch.save({"model": state, "extra": _Payload(str(marker))}, evil)
    with pytest.raises(ModelError, match="--trust-pickle"):
        P.PannsEmbedder(checkpoint=evil)
    assert not marker.exists()
    P.PannsEmbedder(checkpoint=evil, trust_pickle=True)  # the user vouches for the file: it loads
    assert marker.exists()
