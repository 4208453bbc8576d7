import numpy as np
import pytest
import torch
from _cases import Stateful

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
    with pytest.raises(UnsafeModelError, match="--trust-model.*module:attr"):  # a program: only when trusted
        load_model(str(tmp_path / "m.pt"))
    m = load_model(str(tmp_path / "m.pt"), trust_model=True)
    x = torch.randn(4, 3)
    torch.testing.assert_close(m(x), lin(x))
    torch.save(lin.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelError, match="no model code.*load_weights"):
        load_model(str(tmp_path / "sd.pt"), trust_model=True)
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
    with pytest.raises(UnsafeModelError, match="torch.export archive.*--trust-model"):
        load_model(str(tmp_path / "m.pt2"))
    m = load_model(str(tmp_path / "m.pt2"), trust_model=True)
    x = torch.randn(4, 3)
    torch.testing.assert_close(m(x), lin(x))


# ------------------------------------------------------------------------------- hostile and careless (issue 15)
import io  # noqa: E402
import zipfile  # noqa: E402

from linlens.errors import ComplexInputError, MemoryLimitError, UnsafeModelError  # noqa: E402
from linlens.loaders import inspect_model_ops  # noqa: E402
from linlens.surrogate import LinearSurrogate  # noqa: E402


def test_text_files_header_bom_whitespace(tmp_path):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
    cases = {
        "bom.csv": "\ufeff1,2,3\n4,5,6.5\n",  # a BOM before a data row: not a header
        "bomhead.csv": "\ufeffx,y,z\n1,2,3\n4,5,6.5\n",
        "ws.txt": "1 2 3\n4\t5   6.5\n",  # whitespace-separated: line 1 is data
        "wshead.txt": "a b c\n1 2 3\n4 5 6.5\n",
        "spaces.csv": " 1 , 2 ,3\n4,5, 6.5\n\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        np.testing.assert_array_equal(load_array(tmp_path / name), a, err_msg=name)
    (tmp_path / "typo.csv").write_text("1,2x,3\n4,5,6.5\n")  # a typo in row 1 is not a header
    with pytest.raises(InputFileError, match="line 1"):
        load_array(tmp_path / "typo.csv")
    (tmp_path / "only_header.csv").write_text("a,b\n")
    with pytest.raises(EmptyInputError):
        load_array(tmp_path / "only_header.csv")


def test_empty_npz_and_huge_headers(tmp_path):
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(EmptyInputError, match="holds no arrays"):
        load_array(tmp_path / "empty.npz")
    # an .npy header declaring 6.4 GB over 32 bytes of data: refused from the header, nothing allocated
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 2)))
    header["shape"] = (400_000_000, 2)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(np.zeros(4).tobytes())
    (tmp_path / "huge.npy").write_bytes(buf.getvalue())
    with pytest.raises(InputFileError, match="declares"):
        load_array(tmp_path / "huge.npy")
    with pytest.raises(InputFileError, match="declares"):
        load_array(tmp_path / "huge.npy", mmap=True)
    # a real, compressible array over the memory limit: refused naming the option
    np.savez_compressed(tmp_path / "zeros.npz", inputs=np.zeros((1000, 300)))
    with pytest.raises(MemoryLimitError, match="--max-memory"):
        load_array(tmp_path / "zeros.npz", max_bytes=1_000_000)
    assert load_array(tmp_path / "zeros.npz").shape == (1000, 300)
    with zipfile.ZipFile(tmp_path / "notnpy.npz", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(EmptyInputError, match="holds no arrays"):
        load_array(tmp_path / "notnpy.npz")


def test_complex_refused_for_every_format_and_the_api(tmp_path):
    Z = np.array([[1 + 2j, 3.0], [4.0, 5 - 1j], [1.0, 2.0]])
    np.save(tmp_path / "z.npy", Z)
    np.savez(tmp_path / "z.npz", inputs=Z)
    torch.save(torch.tensor(Z), tmp_path / "z.pt")
    torch.save({"inputs": torch.tensor(Z)}, tmp_path / "zd.pt")
    for name in ("z.npy", "z.npz", "z.pt", "zd.pt"):
        with pytest.raises(ComplexInputError, match="complex"):
            load_array(tmp_path / name)
    with pytest.raises(ComplexInputError):
        LinearSurrogate().fit(Z, np.ones(3))
    with pytest.raises(ComplexInputError):
        LinearSurrogate().fit(torch.tensor(Z), torch.ones(3))
    with pytest.raises(ComplexInputError):
        LinearSurrogate().fit(np.ones((3, 2)), Z[:, 0])


def test_model_graph_inspection_allow_list(tmp_path):
    class FileToucher(torch.nn.Module):
        def forward(self, x):
            t = torch.from_file("/nonexistent/linlens-victim", shared=False, size=1, dtype=torch.uint8)
            return x + t.float().sum() * 0

    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return torch.relu(x) * 2
            return torch.tanh(x)

    torch.jit.script(FileToucher()).save(str(tmp_path / "f.pt"))
    with pytest.raises(UnsafeModelError, match="aten::from_file.*even with --trust-model"):
        load_model(str(tmp_path / "f.pt"), trust_model=True)  # trust loads it; the inspection still refuses it
    b = torch.jit.script(Branchy())
    assert {"prim::If", "aten::relu", "aten::tanh"} <= inspect_model_ops(b)
    b.save(str(tmp_path / "b.pt"))
    x = torch.randn(3, 2)
    torch.testing.assert_close(load_model(str(tmp_path / "b.pt"), trust_model=True)(x), Branchy()(x))


def test_torchscript_with_setstate_is_refused_before_loading(tmp_path):
    torch.jit.script(Stateful()).save(str(tmp_path / "s.pt"))
    with pytest.raises(UnsafeModelError, match="__setstate__"):
        load_model(str(tmp_path / "s.pt"), trust_model=True)


def test_load_model_auto_places_the_model_like_resolve_device(monkeypatch, tmp_path):
    # a model linlens loads goes where resolve_device("auto") says: CUDA when available (simulated: the move is
    # recorded and stopped), the CPU otherwise; a named device wins
    (tmp_path / "spy_arch.py").write_text(
        "import torch\nmoves = []\n"
        "class Net(torch.nn.Linear):\n"
        "    def __init__(self):\n        super().__init__(2, 2)\n"
        "    def to(self, *args, **kwargs):\n"
        "        moves.append(torch.device(args[0] if args else kwargs['device']).type)\n        return self\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import spy_arch

    for cuda, kw, expected in ((True, {}, "cuda"), (False, {}, "cpu"), (True, {"device": "cpu"}, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        spy_arch.moves.clear()
        load_model("spy_arch:Net", **kw)
        assert spy_arch.moves == [expected], (cuda, kw)


def test_read_rows_chunked_from_a_float32_memory_map_equals_the_rows_in_float64(tmp_path):
    """Rows of a memory-mapped float32 file read chunk by chunk (chunks smaller than, equal to and larger than a
    row; unsorted and repeated indices) are exactly the indexed rows converted to float64."""
    from linlens.loaders import iter_rows, read_rows

    a = np.random.default_rng(0).normal(size=(37, 3, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    m = load_array(tmp_path / "a.npy", ndim=None, mmap=True)
    assert m.dtype == np.float32
    rows = np.array([30, 2, 2, 17, 0, 36, 5])
    for cv in (1, 15, 16, 100, 10**6):
        got = read_rows(m, rows, chunk_values=cv)
        assert got.dtype == np.float64 and np.array_equal(got, a[rows].astype(np.float64))
        assert max(len(c) for _, c in iter_rows(m, rows, chunk_values=cv)) == max(1, min(len(rows), cv // 15))
    assert np.array_equal(read_rows(m), a.astype(np.float64))


def test_read_rows_refuses_nan_naming_the_files_row(tmp_path):
    from linlens.errors import NonFiniteError
    from linlens.loaders import read_rows

    a = np.zeros((50, 4), dtype=np.float32)
    a[41, 2] = np.inf
    np.save(tmp_path / "a.npy", a)
    m = load_array(tmp_path / "a.npy", ndim=None, mmap=True)
    with pytest.raises(NonFiniteError, match="row 41"):
        read_rows(m, np.arange(50)[::-1], chunk_values=8, name="targets")
