"""Model parts: conditions, codecs, vocoders, UNet / DiT denoisers and control adapters (tiny, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foleykit.config import SequenceConfig
from foleykit.errors import ConfigError
from foleykit.models import autoencoder as ae
from foleykit.models import control_adapter as ca
from foleykit.models import dit as dt
from foleykit.models import unet as un
from foleykit.models import vocoder as voc
from foleykit.models.layers import Conditions, resample_series, series_to_latent_grid


def _seq(duration: float = 1.0) -> SequenceConfig:
    return SequenceConfig(duration=duration)


def _mel_codec(seq: SequenceConfig) -> ae.MelLatentCodec:
    from foleykit.audio import MelSpectrogram

    torch.manual_seed(0)
    return ae.MelLatentCodec(
        vae=ae.build_mel_vae(ae.DEBUG_MEL_VAE),
        vocoder=voc.build_hifigan(voc.DEBUG_HIFIGAN),
        mel=MelSpectrogram.from_sequence(seq),
        seq=seq,
    )


def _conds(batch: int, dim: int, *, seconds: bool = True) -> Conditions:
    g = torch.Generator().manual_seed(1)
    extra = {"seconds_start": torch.zeros(batch), "seconds_total": torch.ones(batch)} if seconds else {}
    return Conditions(
        tokens=torch.randn(batch, 5, dim, generator=g),
        mask=torch.ones(batch, 5, dtype=torch.bool),
        global_embed=torch.randn(batch, 16, generator=g),
        **extra,
    )


# --- layers ---------------------------------------------------------------------------------------------
def test_conditions_cat_pads_tokens_and_masks():
    a = Conditions(tokens=torch.ones(1, 2, 3), seconds_start=torch.zeros(1), seconds_total=torch.ones(1))
    b = Conditions(
        tokens=torch.full((2, 4, 3), 2.0),
        mask=torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool),
        seconds_start=torch.ones(2),
        seconds_total=torch.ones(2),
    )
    c = Conditions.cat([a, b])
    assert c.tokens.shape == (3, 4, 3) and c.batch_size == 3
    assert c.mask.tolist() == [
        [True, True, False, False],
        [True, True, True, False],
        [True, False, False, False],
    ]
    assert torch.all(c.tokens[0, 2:] == 0) and torch.all(c.tokens[1:] == 2.0)
    assert c.seconds_start.tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        Conditions.cat([a, Conditions(tokens=torch.ones(1, 1, 3))])  # seconds only on one side
    assert Conditions.cat([a, a]).repeat(2).tokens.shape == (4, 2, 3)


def test_series_to_latent_grid_is_exact_on_its_grid_and_resamples_otherwise():
    s = torch.arange(10.0)[None]
    assert torch.equal(series_to_latent_grid(s, num_latent_frames=2, frames_per_latent=5), s.view(1, 2, 5))
    const = torch.full((2, 7), 3.0)
    assert torch.allclose(resample_series(const, 13), torch.full((2, 13), 3.0))
    assert resample_series(torch.randn(1, 7, 4), 3).shape == (1, 3, 4)
    with pytest.raises(ValueError):
        resample_series(torch.zeros(3), 2)


# --- codecs ---------------------------------------------------------------------------------------------
def test_mel_codec_shapes_for_any_duration():
    seq = _seq(1.0)
    codec = _mel_codec(seq)
    assert codec.latent_shape() == (8, 25, 16)
    assert codec.latent_shape(seq.with_duration(2.3)) == (8, 58, 16)  # ceil(36800 / 640)
    wav = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        z = codec.encode_audio(wav)
        assert z.shape == (2, 8, 25, 16)
        assert codec.encode_audio(torch.randn(1, 15000) * 0.1).shape == (1, 8, 24, 16)  # padded to 24 frames
        dist = codec.encode_dist(wav)
        assert torch.equal(dist.mode() * codec.scaling_factor, z)
        assert not torch.equal(
            codec.encode_audio(wav, sample=True, generator=torch.Generator().manual_seed(0)), z
        )
        assert codec.decode_latents(z).shape == (2, 16000)  # 25 latents x 640 samples
        assert codec.decode_mel(z).shape == (2, 64, 100)


def test_mel_codec_rejects_a_vae_with_the_wrong_downsampling():
    cfg = dict(
        ae.DEBUG_MEL_VAE,
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    with pytest.raises(ConfigError, match="downsamples 2x"):
        ae.MelLatentCodec(
            vae=ae.build_mel_vae(cfg), vocoder=voc.build_hifigan(voc.DEBUG_HIFIGAN), mel=None, seq=_seq()
        )
    codec = ae.MelLatentCodec(
        vae=ae.build_mel_vae(ae.DEBUG_MEL_VAE),
        vocoder=voc.build_hifigan(voc.DEBUG_HIFIGAN),
        mel=None,
        seq=_seq(),
    )
    with pytest.raises(ConfigError, match="mel transform"):
        codec.encode_audio(torch.zeros(1, 16000))


def test_waveform_codec_is_stereo_with_a_2048_hop():
    seq = SequenceConfig.stable_audio_open(duration=0.1)
    torch.manual_seed(0)
    codec = ae.WaveformLatentCodec(vae=ae.build_waveform_vae(ae.DEBUG_OOBLECK), seq=seq)
    assert codec.latent_shape() == (8, 3) and codec.audio_channels == 2  # ceil(4410 / 2048) = 3
    with torch.no_grad():
        z_mono = codec.encode_audio(torch.ones(1, 4410) * 0.1)
        z_stereo = codec.encode_audio(torch.ones(1, 2, 4410) * 0.1)
        assert z_mono.shape == (1, 8, 3) and torch.equal(z_mono, z_stereo)  # mono is duplicated
        assert codec.decode_latents(z_mono).shape == (1, 2, 3 * 2048)
    with pytest.raises(ConfigError, match="hop"):
        ae.WaveformLatentCodec(vae=codec.vae, seq=seq.replace(latent_hop=1024))


# --- vocoders -------------------------------------------------------------------------------------------
def test_hifigan_outputs_one_hop_per_mel_frame():
    model = voc.build_hifigan(voc.DEBUG_HIFIGAN)
    assert voc.hifigan_hop(model) == 160
    with torch.no_grad():
        assert voc.vocode(model, torch.randn(2, 64, 20)).shape == (2, 3200)


def test_istft_vocoder_outputs_one_hop_per_mel_frame_centred_like_the_mel():
    model = voc.IstftVocoder(**voc.DEBUG_ISTFT)
    assert voc.vocoder_hop(model) == 160 and voc.vocoder_hop(voc.build_hifigan(voc.DEBUG_HIFIGAN)) == 160
    with torch.no_grad():
        assert voc.vocode(model, torch.randn(2, 64, 20)).shape == (2, 3200)
        # one frame (k = 10) among silent ones holds a click at its centre (flat magnitude, phase pi * bin): it
        # comes out where foleykit.audio's mel frame k is centred (k * hop + hop / 2); torch.istft alone would
        # put it half a hop early
        log_mag = torch.full((1, 321, 20), -30.0)
        log_mag[..., 10] = 0.0
        phase = (torch.pi * torch.arange(321.0))[None, :, None].expand(1, 321, 20)
        y = model.spectrum_to_waveform(log_mag, phase)[0].numpy()
    centre = float((np.arange(y.size) * y**2).sum() / (y**2).sum())
    assert abs(centre - (10 * 160 + 80)) < 5
    with pytest.raises(ValueError, match="hop_length"):
        voc.IstftVocoder(n_fft=256, hop_length=160)


def test_istft_vocoder_magnitude_prior_gives_the_pitch_before_any_training():
    """With ``magnitude_prior`` the untrained vocoder's magnitude is the mel's pseudo-inverse: a tone comes
    back at its own pitch (its peak mel bin), and a zero frame stays quiet; without it, it does not."""
    from foleykit.audio import log_mel

    seq = _seq(0.5)
    t = np.arange(8000) / seq.sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 1500 * t) * (t < 0.3)).astype(np.float32)
    mel = log_mel(tone, seq.sample_rate, seq)  # (64, 50)
    peak = int(np.argmax(mel[:, 15]))
    torch.manual_seed(0)
    with torch.no_grad():
        for prior in (True, False):
            model = voc.IstftVocoder(**{**voc.DEBUG_ISTFT, "magnitude_prior": prior})
            y = voc.vocode(model, torch.from_numpy(mel)[None])[0].numpy()
            back = log_mel(y, seq.sample_rate, seq)
            assert (int(np.argmax(back[:, 15])) == peak) == prior
            quiet = np.abs(y[int(0.35 * 16000) :]).max() < 1e-3 * np.abs(y).max()
            assert quiet == prior


def test_griffin_lim_inverts_the_foleykit_mel_in_pitch_and_time():
    from foleykit.audio import log_mel

    seq = _seq(0.5)
    sr = seq.sample_rate
    t = np.arange(8000) / sr
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t) * (t >= 0.25)).astype(np.float32)  # starts at 0.25 s
    mel = log_mel(tone, sr, seq)  # (64, 50)
    gl = voc.GriffinLimVocoder(seq=seq, n_iter=32)
    y = gl(torch.from_numpy(mel)[None])
    assert y.shape == (1, 8000)
    mel2 = log_mel(y[0].numpy(), sr, seq)
    assert np.argmax(mel[:, 40]) == np.argmax(mel2[:, 40])  # same pitch
    loud = mel > mel.max() - 3
    assert np.abs(mel2 - mel)[loud].mean() < 0.5
    assert torch.equal(gl(torch.from_numpy(mel)[None]), y)  # deterministic
    # timing: a noise burst comes back where it was (the mel frames are centred half a hop late; uncorrected,
    # the energy envelope would lead by ~110 samples)
    x = np.zeros(8000, np.float32)
    x[4000:4800] = np.random.default_rng(0).standard_normal(800).astype(np.float32) * 0.3
    yb = gl(torch.from_numpy(log_mel(x, sr, seq))[None])[0].numpy()
    k = np.ones(64) / 64
    ex, ey = np.convolve(x**2, k, "same"), np.convolve(yb**2, k, "same")
    lags = np.arange(-200, 201)
    lag = lags[np.argmax([np.dot(ex[200:-200], np.roll(ey, -int(lag))[200:-200]) for lag in lags])]
    assert abs(lag) <= 50


def test_griffin_lim_started_from_a_waveform_keeps_its_phase():
    """``init=``: the iterations start from that waveform's phase (aligned with the mel's frames), so started
    from the original the result is the original's waveform, not merely its spectrum."""
    from foleykit.audio import log_mel

    seq = _seq(0.5)
    x = (0.3 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    mel = torch.from_numpy(log_mel(x, seq.sample_rate, seq))[None]
    gl = voc.GriffinLimVocoder(seq=seq, n_iter=4)
    started = gl(mel, init=torch.from_numpy(x)[None])[0].numpy()
    random = gl(mel)[0].numpy()
    core = slice(1000, 7000)
    corr = [np.corrcoef(y[core], x[core])[0, 1] for y in (started, random)]
    assert corr[0] > 0.8 and abs(corr[1]) < 0.2
    shorter = gl(mel, init=torch.from_numpy(x[:5000])[None])  # a shorter start is zero-padded
    assert shorter.shape == (1, 8000) and torch.isfinite(shorter).all()


# --- denoisers ------------------------------------------------------------------------------------------
def test_unet_denoiser_cross_attention_and_film():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 25, 16)
    den = un.UNetDenoiser(unet=un.build_unet(un.DEBUG_UNET))
    assert den.cross_attention_dim == 16 and den.global_dim is None
    with torch.no_grad():
        assert den(x, 10, _conds(2, 16)).shape == x.shape
    film = un.UNetDenoiser(unet=un.build_unet(un.DEBUG_AUDIOLDM_UNET), conditioning="film")
    assert film.cross_attention_dim is None and film.global_dim == 16
    with torch.no_grad():
        y1 = film(x, 10, _conds(2, 16))
        c2 = _conds(2, 16)
        c2.global_embed = c2.global_embed + 1.0
        assert not torch.allclose(film(x, 10, c2), y1)  # the FiLM embedding conditions the output
    with pytest.raises(ConfigError, match="global_embed"):
        film(x, 10, Conditions(tokens=torch.zeros(2, 1, 16)))
    with pytest.raises(ConfigError, match="class_embed_type"):
        un.UNetDenoiser(unet=den.unet, conditioning="film")
    with pytest.raises(ConfigError, match="B x C x T x F"):
        den(torch.zeros(1, 8, 25), 1, _conds(1, 16))


def _dit(in_channels: int = 128):
    torch.manual_seed(0)
    tr = dt.build_dit(dict(dt.DEBUG_DIT, in_channels=in_channels, out_channels=in_channels))
    return dt.DiTDenoiser(
        transformer=tr, projection=dt.build_projection(dt.DEBUG_PROJECTION), timestep_scale=1e-3
    )


def test_dit_denoiser_equals_the_diffusers_forward():
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    den = _dit()
    x = torch.randn(2, 8, 25, 16)
    c = _conds(2, 16)
    tr, pr = den.transformer, den.projection
    with torch.no_grad():
        y = den(x, 500, c)
        s0, s1 = pr.start_number_conditioner(c.seconds_start), pr.end_number_conditioner(c.seconds_total)
        rot = get_1d_rotary_pos_embed(
            tr.config.attention_head_dim // 2, 26, use_real=True, repeat_interleave_real=False
        )
        ref = tr(
            den._flatten(x),
            torch.tensor([0.5]),
            encoder_hidden_states=torch.cat([c.tokens, s0, s1], 1),
            global_hidden_states=torch.cat([s0, s1], 2),
            rotary_embedding=rot,
        ).sample
    assert y.shape == x.shape
    assert torch.allclose(den._flatten(y), ref, atol=1e-5)


def test_dit_gradient_checkpointing_gives_the_same_gradients():
    den = _dit()
    x = torch.randn(1, 8, 25, 16)
    grads = []
    for ckpt in (False, True):
        den.zero_grad()
        if ckpt:
            den.transformer.enable_gradient_checkpointing()
        den(x, 5, _conds(1, 16)).square().mean().backward()
        grads.append(den.transformer.proj_in.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_dit_denoiser_waveform_layout_masks_and_errors():
    den = _dit(in_channels=8)
    x = torch.randn(1, 8, 11)
    c = _conds(1, 16)
    with torch.no_grad():
        y = den(x, 3, c)
        padded = Conditions(
            tokens=torch.cat([c.tokens, torch.randn(1, 3, 16)], 1),
            mask=torch.tensor([[True] * 5 + [False] * 3]),
            seconds_start=c.seconds_start,
            seconds_total=c.seconds_total,
        )
        assert torch.allclose(den(x, 3, padded), y, atol=1e-5)  # masked tokens are ignored
        later = Conditions(**{**c.__dict__, "seconds_total": torch.full((1,), 8.0)})
        assert not torch.allclose(den(x, 3, later), y)  # seconds_total conditions the output
    assert y.shape == x.shape
    with pytest.raises(ConfigError, match="seconds"):
        den(x, 3, Conditions(tokens=c.tokens))
    with pytest.raises(ConfigError, match="channels"):
        den(torch.zeros(1, 4, 11), 3, c)
    with pytest.raises(ConfigError, match="twice"):
        dt.DiTDenoiser(
            transformer=den.transformer,
            projection=dt.build_projection(dict(dt.DEBUG_PROJECTION, conditioning_dim=8, text_encoder_dim=8)),
        )


# --- control adapters -----------------------------------------------------------------------------------
def _unet_setup(film: bool):
    torch.manual_seed(0)
    cfg = un.DEBUG_AUDIOLDM_UNET if film else un.DEBUG_UNET
    den = un.UNetDenoiser(unet=un.build_unet(cfg), conditioning="film" if film else "cross_attention")
    net = ca.UNetControlNetModel.from_unet(
        den.unet, conditioning_channels=4, conditioning_embedding_channels=(8,)
    )
    enc = ca.SeriesControlEncoder(
        frames_per_latent=5, hidden_dim=8, out_channels=4, layout="image", freq_bins=16
    )
    return den, net, enc


def _dit_setup():
    den = _dit()
    net = ca.DiTControlNetModel.from_transformer(den.transformer, depth_factor=0.5, control_dim=8)
    enc = ca.SeriesControlEncoder(frames_per_latent=5, hidden_dim=8, out_channels=8, layout="tokens")
    return den, net, enc


def _perturb(net: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "controlnet_" in name or "control_" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("kind", ["unet", "unet_film", "dit"])
def test_adapters_zero_init_weight_zero_and_effect(kind):
    den, net, enc = _dit_setup() if kind == "dit" else _unet_setup(film=kind == "unet_film")
    x = torch.randn(2, 8, 25, 16)
    c = _conds(2, 16)
    with torch.no_grad():
        feats = enc(torch.rand(2, 125), num_latent_frames=25)
        base = den(x, 7, c)
        assert torch.equal(den(x, 7, c, controls=[(net, feats, 1.0)]), base)  # zero-initialised outputs
        _perturb(net)
        assert torch.equal(den(x, 7, c, controls=[(net, feats, 0.0)]), base)  # weight 0 == no adapter
        moved = den(x, 7, c, controls=[(net, feats, 1.0)])
        assert (moved - base).abs().max() > 1e-4
        two = den(x, 7, c, controls=[(net, feats, 0.5), (net, feats, 0.5)])  # residuals add up
        assert torch.allclose(two, moved, atol=1e-5)


def test_controlnets_copy_the_base_weights():
    den, net, _ = _unet_setup(film=True)
    assert torch.equal(net.conv_in.weight, den.unet.conv_in.weight)
    assert torch.equal(net.class_embedding.weight, den.unet.class_embedding.weight)
    assert all(torch.count_nonzero(p) == 0 for p in net.controlnet_down_blocks.parameters())
    dden, dnet, _ = _dit_setup()
    assert len(dnet.transformer_blocks) == 1  # 50% of 2 blocks
    assert torch.equal(
        dnet.transformer_blocks[0].attn1.to_q.weight, dden.transformer.transformer_blocks[0].attn1.to_q.weight
    )


def test_controlnet_depth_and_windows():
    assert ca.controlnet_depth(24, 0.2) == 5  # Stable-V2A: 20% of the 24 SAO blocks
    assert ca.controlnet_depth(8, 0.25) == 2 and ca.controlnet_depth(6, 0.3333) == 2
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError):
            ca.controlnet_depth(24, bad)
    active = [i for i in range(10) if ca.adapter_active(i, 10, 0.2, 0.6)]
    assert active == [2, 3, 4, 5]
    assert [i for i in range(4) if ca.adapter_active(i, 4, 0.0, 1.0)] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="start"):
        ca.check_window(0.7, 0.2)


def test_control_encoders_map_onto_the_latent_grid():
    seq = _seq(1.0)
    codec = _mel_codec(seq)
    with torch.no_grad():
        tok = ca.SeriesControlEncoder(frames_per_latent=5, out_channels=6)(
            torch.rand(2, 125), num_latent_frames=25
        )
        assert tok.shape == (2, 25, 6)
        loc = ca.LocalFeatureControlEncoder(feature_dim=8, series_channels=1, out_channels=4, freq_bins=16)
        img = loc(torch.rand(1, 25), features=torch.randn(1, 25, 8), num_latent_frames=25)
        assert img.shape == (1, 4, 25, 16)
        with pytest.raises(ConfigError, match="features"):
            loc(torch.rand(1, 25), num_latent_frames=25)
        rewas = ca.VAEControlEncoder(mode="tile_mel", latent_channels=8, out_channels=4)
        e = rewas(torch.randn(1, 100) - 5.0, num_latent_frames=25, codec=codec)
        assert e.shape == (1, 4, 25, 16) and torch.all(e >= -0.2785)  # SiLU output
        with pytest.raises(ConfigError, match="codec"):
            rewas(torch.randn(1, 100), num_latent_frames=25)
    wseq = SequenceConfig.stable_audio_open(duration=0.1)
    wcodec = ae.WaveformLatentCodec(vae=ae.build_waveform_vae(ae.DEBUG_OOBLECK), seq=wseq)
    with torch.no_grad():
        env = ca.VAEControlEncoder(mode="waveform", latent_channels=8, out_channels=8, fc=False)
        assert env(torch.rand(1, 8), num_latent_frames=3, codec=wcodec).shape == (1, 3, 8)
    with pytest.raises(ConfigError, match="layout"):
        ca.SeriesControlEncoder(frames_per_latent=1, layout="grid")
    with pytest.raises(ConfigError, match="out_channels"):
        ca.VAEControlEncoder(mode="waveform", latent_channels=8, out_channels=4, fc=False)


def test_control_map_shape_mismatch_is_an_error():
    _, net, _ = _unet_setup(film=False)
    with pytest.raises(ConfigError, match="latent grid"):
        net(
            torch.zeros(1, 8, 25, 16),
            1,
            conditioning=torch.zeros(1, 4, 24, 16),
            encoder_hidden_states=torch.zeros(1, 2, 16),
        )
    dden, dnet, _ = _dit_setup()
    with pytest.raises(ConfigError, match="latent frames"):
        dden(torch.zeros(1, 8, 25, 16), 1, _conds(1, 16), controls=[(dnet, torch.zeros(1, 24, 8), 1.0)])
