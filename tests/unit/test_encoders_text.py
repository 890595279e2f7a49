"""Text encoders: debug twin, caching, local-folder CLAP / T5 / CLIP loading, missing weights, MiniLM."""

from __future__ import annotations

import pytest
import torch

from foleykit import registry
from foleykit.encoders.text import (
    ClapTextEncoder,
    CLIPTextEncoder,
    DebugTextEncoder,
    MiniLMTextEncoder,
    T5TextEncoder,
)
from foleykit.errors import ConfigError, ModelError, WeightsNotFoundError


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


WORDS = [
    "[PAD]",
    "[UNK]",
    "<s>",
    "</s>",
    "a",
    "glass",
    "dog",
    "barks",
    "breaking",
    "bottle",
    "shatters",
    "footsteps",
    "on",
    "wood",
]


def save_tokenizer(folder) -> None:
    """A tiny word-level tokenizer (14 words) saved in the transformers layout."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=16,
    )
    fast.save_pretrained(str(folder))


# --- debug twin and caching ---------------------------------------------------------------------------------
def test_debug_encoder_tokens_and_mask():
    enc = registry.build("text_encoder", "debug", dim=8)
    tokens, mask = enc.encode(["glass breaking", "", "a dog barks on wood"])
    assert tokens.shape == (3, 6, 8) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [3, 1, 6]  # begin token + words
    assert torch.all(tokens[1, 1:] == 0)  # padding is zero
    # same word -> same vector, wherever it appears
    assert torch.equal(enc.encode(["dog"])[0][0, 1], enc.encode(["a dog"])[0][0, 2])
    pooled = enc.encode_pooled(["glass breaking"])
    assert torch.allclose(pooled[0], tokens[0, :3].mean(0))
    assert not any(p.requires_grad for p in enc.parameters())


def test_cache_encodes_each_prompt_once():
    enc = DebugTextEncoder(dim=4)
    calls = []
    original = enc._encode_batch
    enc._encode_batch = lambda prompts: calls.append(list(prompts)) or original(prompts)
    a, _ = enc.encode(["glass", "dog", "glass"])
    b, _ = enc.encode(["dog", "glass"])
    assert calls == [["glass", "dog"]]
    assert (enc.cache_hits, enc.cache_misses) == (3, 2)
    assert torch.equal(a[1], b[0]) and torch.equal(a[0], a[2])
    enc.to(torch.float64)  # moving the module clears the cache: tensors follow the new dtype/device
    tokens, _ = enc.encode(["glass"])
    assert calls[-1] == ["glass"] and tokens.dtype == torch.float64


def test_cache_is_bounded():
    enc = DebugTextEncoder(dim=4, cache_size=2)
    enc.encode(["a", "b", "c"])
    assert list(enc._cache) == ["b", "c"]
    enc.encode(["b", "d"])
    assert list(enc._cache) == ["b", "d"]


def test_frozen_encoder_stays_in_eval_mode():
    parent = torch.nn.Module()
    parent.text = DebugTextEncoder()
    parent.train()
    assert parent.training and not parent.text.training


@pytest.mark.parametrize("bad, match", [("a dog", "list of prompts"), ([], "empty"), ([3], "strings")])
def test_prompt_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        DebugTextEncoder().encode(bad)


# --- local folders (tiny random models in the published layouts) ------------------------------------------
@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    from transformers import (
        ClapConfig,
        ClapModel,
        CLIPConfig,
        CLIPModel,
        MT5Config,
        MT5EncoderModel,
        T5Config,
        T5EncoderModel,
    )

    root = tmp_path_factory.mktemp("text_models")
    torch.manual_seed(0)
    ClapModel(
        ClapConfig(
            text_config={
                "vocab_size": 32,
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 37,
                "max_position_embeddings": 40,
                "type_vocab_size": 1,
            },
            audio_config={
                "hidden_size": 32,
                "depths": [1, 1],
                "num_attention_heads": [2, 2],
                "window_size": 4,
                "spec_size": 256,
                "num_mel_bins": 64,
                "patch_stride": [4, 4],
                "patch_embeds_hidden_size": 16,
                "enable_fusion": False,
            },
            projection_dim=16,
        )
    ).save_pretrained(root / "clap")
    T5EncoderModel(
        T5Config(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    ).save_pretrained(root / "t5")
    MT5EncoderModel(
        MT5Config(vocab_size=32, d_model=24, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    ).save_pretrained(root / "mt5")
    CLIPModel(
        CLIPConfig(
            text_config={
                "vocab_size": 32,
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "max_position_embeddings": 16,
                "bos_token_id": 2,
                "eos_token_id": 3,
            },
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            projection_dim=8,
        )
    ).save_pretrained(root / "clip")
    # a diffusers-pipeline layout: <root>/text_encoder + <root>/tokenizer
    T5EncoderModel(
        T5Config(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    ).save_pretrained(root / "pipe" / "text_encoder")
    for name in ("clap", "t5", "mt5", "clip", "pipe/tokenizer"):
        save_tokenizer(root / name)
    return root


def test_clap_text_from_folder(tiny_folders):
    enc = registry.build("text_encoder", "clap", path=tiny_folders / "clap")
    assert enc.dim == 16
    tokens, mask = enc.encode(["glass breaking", "a dog barks"])
    assert tokens.shape == (2, 1, 16) and mask.all()
    assert torch.allclose(tokens.norm(dim=-1), torch.ones(2, 1), atol=1e-5)  # projected, L2-normalised
    with torch.no_grad():
        ids = torch.tensor([[WORDS.index("glass"), WORDS.index("breaking")]])
        ref = enc.model.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
        ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    assert torch.allclose(tokens[0, 0], torch.nn.functional.normalize(ref[0], dim=-1), atol=1e-5)
    seq = ClapTextEncoder(path=tiny_folders / "clap", output="tokens")
    tokens, mask = seq.encode(["glass breaking", "a dog barks on wood"])
    assert seq.dim == 32 and tokens.shape == (2, 5, 32) and mask.sum(1).tolist() == [2, 5]


def test_t5_and_mt5_from_folder(tiny_folders):
    t5 = T5TextEncoder(path=tiny_folders / "t5")
    tokens, mask = t5.encode(["glass breaking", "a dog barks"])
    assert type(t5.model).__name__ == "T5EncoderModel" and t5.dim == 16
    assert tokens.shape == (2, 3, 16) and mask.sum(1).tolist() == [2, 3]
    with torch.no_grad():
        ref = t5.model(input_ids=torch.tensor([[5, 8]])).last_hidden_state
    assert torch.allclose(tokens[0, :2], ref[0], atol=1e-5)
    mt5 = registry.build("text_encoder", "t5", path=tiny_folders / "mt5")
    assert type(mt5.model).__name__ == "MT5EncoderModel" and mt5.encode(["dog"])[0].shape == (1, 1, 24)
    pipe = T5TextEncoder(path=tiny_folders / "pipe")  # text_encoder/ + tokenizer/ sub-folders
    assert pipe.folder.name == "text_encoder" and pipe.encode(["wood"])[0].shape == (1, 1, 16)


def test_clip_text_from_folder(tiny_folders):
    enc = CLIPTextEncoder(path=tiny_folders / "clip")
    tokens, mask = enc.encode(["footsteps on wood"])
    assert enc.dim == 16 and tokens.shape == (1, 3, 16) and mask.all()
    pooled = registry.build("text_encoder", "clip", path=tiny_folders / "clip", output="pooled")
    assert pooled.dim == 8 and pooled.encode(["glass"])[0].shape == (1, 1, 8)
    with pytest.raises(ConfigError, match="tokens or pooled"):
        CLIPTextEncoder(path=tiny_folders / "clip", output="mean")


def test_missing_weights_errors(tiny_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError) as err:
        ClapTextEncoder(path=tmp_path / "nowhere")
    text = str(err.value)
    assert "CLAP text encoder" in text and "nowhere" in text and "config.json" in text
    assert "never downloads" in text and "save_pretrained" in text
    # the default hub id is only looked up in the local cache
    with pytest.raises(WeightsNotFoundError, match="google/flan-t5-large"):
        T5TextEncoder()
    # a config without weights
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text((tiny_folders / "t5" / "config.json").read_text())
    with pytest.raises(WeightsNotFoundError, match="no weights"):
        T5TextEncoder(path=tmp_path / "noweights")
    # weights without a tokenizer
    import shutil

    shutil.copytree(tiny_folders / "t5", tmp_path / "notok")
    for f in (tmp_path / "notok").glob("tok*"):
        f.unlink()
    with pytest.raises(WeightsNotFoundError, match="no tokenizer"):
        T5TextEncoder(path=tmp_path / "notok")
    # the wrong model family in the folder
    with pytest.raises(ConfigError, match="expected t5"):
        T5TextEncoder(path=tiny_folders / "clip")
    # a checkpoint that lacks some of the model's weights
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "notok" / "model.safetensors"))
    save_file(
        {k: v for k, v in state.items() if "final_layer_norm" not in k},
        str(tmp_path / "notok" / "model.safetensors"),
    )
    save_tokenizer(tmp_path / "notok")
    with pytest.raises(ModelError, match="weights missing, e.g. encoder.final_layer_norm.weight"):
        T5TextEncoder(path=tmp_path / "notok")


# --- the packaged MiniLM ------------------------------------------------------------------------------------
def test_packaged_minilm_semantics():
    enc = registry.build("text_encoder", "minilm")
    tokens, mask = enc.encode(["glass breaking", "a glass bottle shatters", "a dog barks"])
    assert enc.dim == 384 and tokens.shape[0] == 3 and tokens.shape[2] == 384
    assert mask.sum(1).tolist() == [4, 7, 6]  # [CLS] a dog bark ##s [SEP]
    e = enc.encode_pooled(["glass breaking", "a glass bottle shatters", "a dog barks"])
    sim = e @ e.T
    # sentence-transformers gives 0.747 / -0.046 for these pairs (measured with SentenceTransformer.encode)
    assert sim[0, 1].item() == pytest.approx(0.747, abs=0.01)
    assert sim[0, 2].item() == pytest.approx(-0.046, abs=0.01)
    assert sim[0, 1] > sim[0, 2] + 0.5
    assert isinstance(enc, MiniLMTextEncoder) and not any(p.requires_grad for p in enc.parameters())
