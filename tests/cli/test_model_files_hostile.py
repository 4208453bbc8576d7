"""Issue 25, model files: executable formats are loaded only with --trust-model, the inspection behind it parses
archives the way torch does, and the safe way (module:attr + weights-only state dict) runs no code from files.
Every hostile file is generated here; the "victim" files prove that nothing ran."""

from __future__ import annotations

import io
import os
import pickle
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from _cases import Stateful

from linlens.cli import main
from linlens.errors import UnsafeModelError
from linlens.loaders import load_model, load_weights


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def _save_script(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))
    return path


@pytest.fixture
def data(tmp_path):
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(200, 3)))
    return tmp_path


def test_executable_formats_need_trust_and_nothing_is_loaded(data, capsys, monkeypatch):
    """Without --trust-model neither torch.export.load nor torch.jit.load is ever called (they run code from
    the file): one line, exit 2, naming the safe way."""
    lin = torch.nn.Linear(3, 2).double()
    _save_script(lin, data / "m.pt")
    prog = torch.export.export(lin, (torch.randn(4, 3, dtype=torch.float64),))
    torch.export.save(prog, str(data / "m.pt2"))
    calls = []
    monkeypatch.setattr(torch.export, "load", lambda *a, **k: calls.append("export") or 1 / 0)
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append("jit") or 1 / 0)
    for name in ("m.pt", "m.pt2"):
        code, _, err = _run(["analyze", "-m", data / name, "-i", data / "y.npy", "-o", data / f"rep-{name}"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "--trust-model" in err and "module:attr" in err and "load_weights" in err
        assert not (data / f"rep-{name}").exists()
    assert calls == []


def test_koopman_and_flows_refuse_model_files_without_trust(data, capsys):
    _save_script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)), data / "s.pt")
    for k in ("train", "val", "test"):
        np.savez(data / f"{k}.npz", inputs=np.random.default_rng(0).random((20, 2)), labels=np.arange(20) % 2)
    code, _, err = _run(["koopman", "-m", data / "s.pt", "--layer", "1", "--train", data / "train.npz", "--val",
                         data / "val.npz", "--test", data / "test.npz", "-o", data / "k"], capsys)
    assert code == 2 and "--trust-model" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(["flows", "-m", data / "s.pt", "--data", data / "y.npy", "-o", data / "f"], capsys)
    assert code == 2 and "--trust-model" in err and len(err.strip().splitlines()) == 1


def _helper_maps_file(x: torch.Tensor, path: str) -> torch.Tensor:
    t = torch.from_file(path, shared=True, size=4, dtype=torch.uint8)
    t.fill_(88)
    return x + t.sum().to(x.dtype) * 0


class _Forked(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def forward(self, x):
        fut = torch.jit.fork(_helper_maps_file, x, self.path)
        return torch.jit.wait(fut)


class _OtherMethod(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def forward(self, x):
        return x * 2

    @torch.jit.export
    def other(self, x):
        return _helper_maps_file(x, self.path)


class _Plain(torch.nn.Module):
    def forward(self, x):
        return x * 2


def test_trusted_files_are_still_inspected_forks_methods_hooks(data, capsys):
    """The second line: work started with torch.jit.fork, exported methods other than forward and scripted
    forward pre-hooks are inspected too; the victim file keeps its bytes."""
    victim = data / "victim.bin"
    victim.write_bytes(b"keep")
    hooked = _Plain()

    def pre(m: torch.nn.Module, inp: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
        t = torch.from_file("/nonexistent-linlens-victim", shared=True, size=4, dtype=torch.uint8)
        t.fill_(88)
        return (inp[0] + t.sum().to(inp[0].dtype) * 0,)

    hooked.register_forward_pre_hook(pre)
    for name, mod in (("fork", _Forked(str(victim))), ("method", _OtherMethod(str(victim))), ("hook", hooked)):
        _save_script(mod, data / f"{name}.pt")
        code, _, err = _run(["analyze", "--trust-model", "-m", data / f"{name}.pt", "-i", data / "y.npy", "-o",
                             data / f"rep-{name}"], capsys)
        assert code == 2 and "aten::from_file" in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not (data / f"rep-{name}").exists()
    assert victim.read_bytes() == b"keep"


def _rewrite(src, dst, edit):
    """Copy a zip archive entry by entry; ``edit(name, data)`` returns a list of (name, data) to write."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point of one case
        for info in zin.infolist():
            for name, blob in edit(info.filename, zin.read(info)):
                zout.writestr(name, blob)


@pytest.mark.parametrize("dodge", ["two_spaces", "tab", "continuation", "upper_code_dir", "upper_py", "duplicate"])
def test_setstate_is_found_however_the_archive_is_written(tmp_path, monkeypatch, dodge):
    """The refusal of __setstate__ (code run by torch.jit.load itself) survives every dodge of the last fuzz:
    odd whitespace, CODE/ and .PY names (torch matches names case-insensitively) and a duplicate entry (torch's
    reader takes the first, Python's zipfile the last). torch.jit.load is never reached."""
    _save_script(Stateful(), tmp_path / "s.pt")
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load ran"))

    def edit(name, blob):
        if "/code/" not in f"/{name}" or not name.endswith(".py"):
            return [(name, blob)]
        text = blob.decode()
        if dodge == "two_spaces":
            return [(name, text.replace("def __setstate__", "def  __setstate__").encode())]
        if dodge == "tab":
            return [(name, text.replace("def __setstate__", "def\t__setstate__").encode())]
        if dodge == "continuation":
            return [(name, text.replace("def __setstate__", "def \\\n __setstate__").encode())]
        if dodge == "upper_code_dir":
            return [(name.replace("/code/", "/CODE/"), blob)]
        if dodge == "upper_py":
            return [(name[:-3] + ".PY", blob)]
        clean = text.replace("__setstate__", "__harmless__").encode()
        return [(name, blob), (name, clean)]  # first (torch reads it): __setstate__; last (zipfile): clean

    _rewrite(tmp_path / "s.pt", tmp_path / "d.pt", edit)
    with pytest.raises(UnsafeModelError, match="__setstate__"):
        load_model(str(tmp_path / "d.pt"), trust_model=True)


class _Boom:
    """A pickle that runs code when loaded without weights_only."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_safe_way_module_attr_with_weights_only_state_dict(tmp_path, capsys, monkeypatch):
    """The documented safe path: the architecture in the user's own module, weights from a .pt state dict or a
    .safetensors file; a pickled payload in the weights file is refused and does not run."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2).double()
    torch.save(lin.state_dict(), tmp_path / "w.pt")
    (tmp_path / "safe_arch_mod.py").write_text(
        "import torch\nfrom linlens.loaders import load_weights\n"
        f"model = load_weights(torch.nn.Linear(3, 2).double(), {str(tmp_path / 'w.pt')!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("safe_arch_mod", None)
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(300, 3)))
    np.save(tmp_path / "R.npy", lin.weight.detach().numpy())
    code, _, err = _run(["analyze", "-m", "safe_arch_mod:model", "-i", tmp_path / "y.npy", "-r", tmp_path / "R.npy",
                         "-o", tmp_path / "rep"], capsys)
    assert code in (0, None), err
    import json

    coef = np.asarray(json.loads((tmp_path / "rep" / "metrics.json").read_text())["coef"])
    np.testing.assert_allclose(coef, lin.weight.detach().numpy(), atol=1e-10)  # the saved weights, not random ones
    # a weights file carrying a pickled payload: refused, the payload never runs
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 3), "evil": _Boom(str(marker))}, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    from linlens.errors import InputFileError

    with pytest.raises(InputFileError, match="weights-only"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "evil.pt")
    assert not marker.exists()
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_torch.save_file({k: v.contiguous() for k, v in lin.state_dict().items()},
                                str(tmp_path / "w.safetensors"))
    m = load_weights(torch.nn.Linear(3, 2).double(), tmp_path / "w.safetensors")
    torch.testing.assert_close(m.weight, lin.weight)


def test_float64_export_archive_on_images_gets_float64_inputs(tmp_path, capsys):
    """The image wrapper used to hide the program's parameters, so float64 .pt2 convs got float32 inputs and
    failed ("float != double"). Truth: the conv's matrix, built by applying it to the basis images."""
    import json

    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)).double()
    prog = torch.export.export(conv, (torch.randn(4, 1, 6, 6, dtype=torch.float64),),
                               dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    torch.export.save(prog, str(tmp_path / "c.pt2"))
    with torch.no_grad():
        M = conv(torch.eye(36, dtype=torch.float64).reshape(36, 1, 6, 6)).reshape(36, 36).T.numpy()
    np.save(tmp_path / "img.npy", np.random.default_rng(0).normal(size=(400, 1, 6, 6)))
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "c.pt2", "-i", tmp_path / "img.npy", "-o",
                         tmp_path / "rep"], capsys)
    assert code in (0, None), err
    coef = np.asarray(json.loads((tmp_path / "rep" / "metrics.json").read_text())["coef"])
    np.testing.assert_allclose(coef, M, atol=1e-10)

