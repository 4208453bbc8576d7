import numpy as np
import pytest
import torch

from linlens.errors import EmptyInputError, InputFileError, ModelError, NonFiniteError, ShapeError
from linlens.loaders import load_array, load_model


def test_formats_round_trip(tmp_path):
    a = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "a.npz", inputs=a, other=a[:1])
    torch.save(torch.tensor(a), tmp_path / "a.pt")
    (tmp_path / "a.csv").write_text("x,y,z\n" + "\n".join(",".join(str(v) for v in r) for r in a))
    for name in ["a.npy", "a.npz", "a.pt", "a.csv"]:
        np.testing.assert_array_equal(load_array(tmp_path / name), a)


def test_hostile_and_bad_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="pickle"):
        load_array(tmp_path / "obj.npy")
    with pytest.raises(InputFileError, match="not found"):
        load_array(tmp_path / "missing.npy")
    (tmp_path / "bad.csv").write_text("1,2\n3,abc\n")
    with pytest.raises(InputFileError, match="non-numeric"):
        load_array(tmp_path / "bad.csv")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(NonFiniteError):
        load_array(tmp_path / "nan.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(EmptyInputError):
        load_array(tmp_path / "empty.npy")
    np.save(tmp_path / "vec.npy", np.zeros(3))
    with pytest.raises(ShapeError):
        load_array(tmp_path / "vec.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(InputFileError):
        load_array(tmp_path / "junk.npy")
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(InputFileError, match="unsupported"):
        load_array(tmp_path / "x.json")


def test_load_model_torchscript_and_errors(tmp_path):
    lin = torch.nn.Linear(3, 2)
    torch.jit.script(lin).save(str(tmp_path / "m.pt"))
    m = load_model(str(tmp_path / "m.pt"))
    x = torch.randn(4, 3)
    torch.testing.assert_close(m(x), lin(x))
    torch.save(lin.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelError, match="TorchScript"):
        load_model(str(tmp_path / "sd.pt"))
    with pytest.raises(InputFileError):
        load_model(str(tmp_path / "nothing.pt"))
    with pytest.raises(ModelError):
        load_model("linlens_no_such_module_xyz:model")
    m2 = load_model("torch.nn:Identity")
    torch.testing.assert_close(m2(x), x)


def test_load_model_torch_export_archive(tmp_path):
    lin = torch.nn.Linear(3, 2)
    prog = torch.export.export(lin, (torch.randn(4, 3),))
    torch.export.save(prog, str(tmp_path / "m.pt2"))
    m = load_model(str(tmp_path / "m.pt2"))
    x = torch.randn(4, 3)
    torch.testing.assert_close(m(x), lin(x))
