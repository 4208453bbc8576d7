"""The Lightning callback gives the numbers of linlens track on state dicts saved at the same epochs (skipped when
lightning is not installed; it is an optional extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from linlens.problems import InverseProblem, SmoothPrior, gaussian_blur
from linlens.tracking import Tracker, track_checkpoints


def test_import_without_lightning_names_the_extra():
    if importlib.util.find_spec("lightning") or importlib.util.find_spec("pytorch_lightning"):
        pytest.skip("lightning is installed")
    with pytest.raises(ImportError, match=r"linlens\[lightning\]"):
        from linlens.tracking.lightning import TrackerCallback  # noqa: F401


def test_callback_equals_checkpoint_route(tmp_path):
    L = pytest.importorskip("lightning.pytorch")
    from linlens.tracking.lightning import TrackerCallback

    prob = InverseProblem(gaussian_blur(8, width=1.5), SmoothPrior(8, length_scale=3.0), 1e-2)
    X, Y = prob.sample(256, seed=0)
    Xp, Yp = prob.sample(120, seed=1)

    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8))

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net()

        def forward(self, y):
            return self.net(y)

        def training_step(self, batch, _):
            y, x = batch
            return torch.nn.functional.mse_loss(self.net(y), x)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    class Save(L.Callback):  # state dicts of the inner network at the same points as the tracker
        def on_train_start(self, trainer, m):
            torch.save(m.net.state_dict(), tmp_path / "ckpt_0.pt")

        def on_train_epoch_end(self, trainer, m):
            torch.save(m.net.state_dict(), tmp_path / f"ckpt_{trainer.current_epoch + 1}.pt")

    data = torch.utils.data.TensorDataset(torch.tensor(Y, dtype=torch.float32), torch.tensor(X, dtype=torch.float32))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    kw = {"n_boot": 20, "n_jacobian": 3, "n_bands": 2, "seed": 1}
    tracker = Tracker(Yp, Xp, prob.A, **kw)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[TrackerCallback(tracker),
                                                                                          Save()])
    trainer.fit(Module(), loader)
    res = track_checkpoints(net(), str(tmp_path / "ckpt_*.pt"), Tracker(Yp, Xp, prob.A, **kw))
    assert [p.step for p in tracker.history_] == [p.step for p in res.points] == [0, 1, 2, 3]
    for a, b in zip(tracker.history_, res.points, strict=True):
        assert a.r2 == pytest.approx(b.r2, rel=1e-12)
        np.testing.assert_allclose(a.filter_factors, b.filter_factors, rtol=1e-10, atol=1e-14)
        for k in a.errors:
            assert a.errors[k]["estimate"] == pytest.approx(b.errors[k]["estimate"], rel=1e-10, abs=1e-15)
            assert a.errors[k]["high"] == pytest.approx(b.errors[k]["high"], rel=1e-10, abs=1e-15)
        assert a.verdict == b.verdict
    assert tracker.history_[0].filter_factors.tolist() != tracker.history_[-1].filter_factors.tolist()
