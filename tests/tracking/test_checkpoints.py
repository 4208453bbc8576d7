"""The checkpoint step rule (the last integer in the file name), numeric order and its refusals."""

from __future__ import annotations

import pytest
import torch

from linlens.errors import InputFileError, ModelError
from linlens.tracking import Tracker, checkpoint_step, ordered_checkpoints, track_checkpoints


@pytest.mark.parametrize("name,step", [("ckpt_000120.pt", 120), ("epoch=3-step=1200.pt", 1200), ("w7.safetensors", 7),
                                       ("run2/ckpt_5.pt", 5), ("model.v2.step10.pt", 10)])
def test_step_is_the_last_integer_of_the_name(name, step):
    assert checkpoint_step(name) == step


def test_numeric_order_and_refusals(tmp_path):
    for k in (100, 20, 3):
        (tmp_path / f"c_{k}.pt").write_bytes(b"")
    assert [s for s, _ in ordered_checkpoints(str(tmp_path / "c_*.pt"))] == [3, 20, 100]  # not "100" < "20" < "3"
    (tmp_path / "c_020.pt").write_bytes(b"")
    with pytest.raises(InputFileError, match="same step 20"):
        ordered_checkpoints(str(tmp_path / "c_*.pt"))
    (tmp_path / "c_020.pt").unlink()
    (tmp_path / "c_x.pt").write_bytes(b"")
    with pytest.raises(InputFileError, match="no step"):
        ordered_checkpoints(str(tmp_path / "c_*.pt"))
    with pytest.raises(InputFileError, match="no file matches"):
        ordered_checkpoints(str(tmp_path / "nothing_*.pt"))


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    torch.save({"w": [1, 2]}, tmp_path / "c_1.pt")
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(InputFileError, match="state dict"):
        track_checkpoints(lin, str(tmp_path / "c_*.pt"), Tracker(torch.randn(10, 2).numpy()))
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "c_1.pt")  # the wrong architecture
    with pytest.raises(ModelError, match="does not fit"):
        track_checkpoints(lin, str(tmp_path / "c_*.pt"), Tracker(torch.randn(10, 2).numpy()))
