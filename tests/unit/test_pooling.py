"""Semantic pieces: attentive pooling (STA-V2A eq. 2-4), frame projector (VTA-LDM), positions."""

from __future__ import annotations

import math

import pytest
import torch

from foleykit.errors import ConfigError
from foleykit.models.pooling import AttentivePooling, FrameProjector, LearnedPositions, SinusoidalPositions


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sinusoidal_positions_hand_values():
    pos = SinusoidalPositions(dim=4)  # freqs = [1, 10000 ** -0.5 = 0.01]
    table = pos(3)
    assert table.shape == (3, 4)
    expected_row1 = [math.sin(1.0), math.sin(0.01), math.cos(1.0), math.cos(0.01)]
    assert torch.allclose(table[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(table[1], torch.tensor(expected_row1), atol=1e-6)
    # fractional positions (e.g. seconds) and batches work too
    assert torch.allclose(pos(torch.tensor([[1.0]]))[0, 0], table[1])
    with pytest.raises(ConfigError, match="even"):
        SinusoidalPositions(dim=5)


def test_learned_positions_limit():
    pos = LearnedPositions(dim=8, max_len=10)
    assert pos(10).shape == (10, 8)
    with pytest.raises(ConfigError, match="only 10"):
        pos(11)


def test_attentive_pooling_shapes_and_weights():
    torch.manual_seed(0)
    pool = AttentivePooling(in_dim=6, out_dim=8, num_tokens=4).eval()
    x = torch.randn(3, 7, 6)
    assert pool(x).shape == (3, 4, 8)
    p, e = pool.attention(x)
    assert p.shape == (3, 7) and e.shape == (3, 7, 8)
    assert torch.allclose(p.sum(1), torch.ones(3), atol=1e-6) and bool((p >= 0).all())


def test_attentive_pooling_is_order_invariant_and_exact_on_constant_input():
    torch.manual_seed(0)
    pool = AttentivePooling(in_dim=5, out_dim=6, num_tokens=2).eval()
    x = torch.randn(1, 9, 5)
    perm = torch.randperm(9)
    assert torch.allclose(pool(x), pool(x[:, perm]), atol=1e-5)
    # identical frames: the weighted sum is that frame whatever the weights (eq. 2)
    frame = torch.randn(1, 1, 5)
    pooled = pool.proj(frame)[:, 0]
    expected = pool.to_tokens(pooled[:, None, :])
    assert torch.allclose(pool(frame.expand(1, 6, 5)), expected, atol=1e-5)


def test_attentive_pooling_mask_ignores_padding():
    torch.manual_seed(0)
    pool = AttentivePooling(in_dim=4, out_dim=8).eval()
    x = torch.randn(1, 5, 4)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 4)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    assert torch.allclose(pool(padded, mask), pool(x), atol=1e-5)
    p, _ = pool.attention(padded, mask)
    assert torch.all(p[0, 5:] == 0)
    with pytest.raises(ConfigError, match="at least one valid"):
        pool(padded, torch.zeros(1, 8, dtype=torch.bool))
    with pytest.raises(ConfigError, match="mask shape"):
        pool(padded, mask[:, :4])


def test_attentive_pooling_errors():
    pool = AttentivePooling(in_dim=4, out_dim=8)
    with pytest.raises(ConfigError, match=r"B x T x 4"):
        pool(torch.randn(2, 5, 3))
    with pytest.raises(ConfigError, match="zero time steps"):
        pool(torch.randn(2, 0, 4))
    with pytest.raises(ConfigError):
        AttentivePooling(in_dim=4, out_dim=8, num_tokens=0)


def test_attentive_pooling_learns_to_attend():
    """Targets are copies of one marked frame: pooling must learn to attend to it (loss / 100)."""
    torch.manual_seed(0)
    B, T, D = 16, 8, 6
    x = torch.randn(B, T, D)
    where = torch.randint(0, T, (B,))
    x[torch.arange(B), where, 4:] = 4.0  # the marker the local potential can find
    marked = x[torch.arange(B), where]
    target = torch.stack([marked, 2 * marked], dim=1)  # token k = (k + 1) * marked frame
    pool = AttentivePooling(in_dim=D, out_dim=D, num_tokens=2)
    opt = torch.optim.Adam(pool.parameters(), lr=3e-2)
    losses = []
    for _ in range(100):
        loss = ((pool(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100
    p, _ = pool.attention(x)
    assert torch.equal(p.argmax(1), where)


def test_frame_projector_positions():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    plain = FrameProjector(in_dim=3, out_dim=8)
    assert plain(x).shape == (2, 5, 8)
    sin = FrameProjector(in_dim=3, out_dim=8, positions="sinusoidal")
    sin.proj.load_state_dict(plain.proj.state_dict())
    assert torch.allclose(sin(x) - plain(x), SinusoidalPositions(dim=8)(5).expand(2, 5, 8), atol=1e-6)
    mlp = FrameProjector(in_dim=3, out_dim=8, hidden_dim=16, positions="learned", max_len=5)
    assert mlp(x).shape == (2, 5, 8)
    with pytest.raises(ConfigError, match="only 5"):
        mlp(torch.randn(1, 6, 3))
    with pytest.raises(ConfigError, match="positions must be"):
        FrameProjector(in_dim=3, out_dim=8, positions="rotary")
    with pytest.raises(ConfigError, match=r"B x T x 3"):
        plain(torch.randn(5, 3))
