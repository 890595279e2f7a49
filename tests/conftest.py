"""Shared pytest configuration: CPU only, no network, slow/gpu/browser markers."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tests run tiny models: one intra-op thread is as fast when the machine is idle and much faster when it
# is shared (2 threads on a busy 2-core machine were measured 10-20x slower). Override with
# FOLEYKIT_TEST_THREADS.
try:
    import torch

    torch.set_num_threads(int(os.environ.get("FOLEYKIT_TEST_THREADS", "1")))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True, scope="session")
def _isolated_foleykit_home(tmp_path_factory):
    """No test reads or writes the user's $FOLEYKIT_HOME (caches, banks, user models)."""
    old = os.environ.get("FOLEYKIT_HOME")
    os.environ["FOLEYKIT_HOME"] = str(tmp_path_factory.mktemp("foleykit_home"))
    yield
    if old is None:
        os.environ.pop("FOLEYKIT_HOME", None)
    else:
        os.environ["FOLEYKIT_HOME"] = old


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("RUN_SLOW") == "1"
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except (ImportError, RuntimeError):  # pragma: no cover
        has_gpu = False
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: set RUN_SLOW=1 to run"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture()
def varying_rms_mapper(monkeypatch):
    """Every RMS-Mapper predicts a slowly swinging level (a Gaussian over the classes about a sine), so that its
    decoded curve moves frame by frame whatever the random debug weights are (they can give a flat curve)."""
    from foleykit.models.predictors import RMSMapper

    def forward(self, feats, num_frames):
        classes = torch.arange(self.num_classes, dtype=torch.float32)
        t = torch.arange(int(num_frames), dtype=torch.float32)
        level = (self.num_classes - 1) * (0.5 + 0.45 * torch.sin(t / 7.0))
        logits = -((classes[None, :] - level[:, None]) ** 2) / 2.0
        return logits[None].expand(feats.shape[0], -1, -1).contiguous()

    monkeypatch.setattr(RMSMapper, "forward", forward)
