"""The one `module:attr` importer (linlens.validation.import_attr): where it looks, what it says, SystemExit."""

import os
import runpy
import sys

import pytest

from linlens.errors import InputFileError, ModelError
from linlens.loaders import load_model
from linlens.operators import load_operator
from linlens.validation import import_attr


@pytest.fixture
def clean(monkeypatch):
    """Restore sys.path and forget the test modules afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for k in [k for k in sys.modules if k.startswith("ia_")]:
        del sys.modules[k]


def test_resolves_in_the_current_folder(tmp_path, monkeypatch, clean):
    (tmp_path / "ia_here.py").write_text("value = 41\nclass K:\n    inner = 7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    assert import_attr("ia_here:value") == 41 and import_attr("ia_here:K.inner") == 7


def test_resolves_in_the_folder_of_the_file_that_names_it(tmp_path, monkeypatch, clean):
    """A script elsewhere names 'ia_near:value' while the current folder is another one (as from a notebook or
    runpy): the module beside the script is found, without the user touching sys.path."""
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    proj.mkdir(), elsewhere.mkdir()
    (proj / "ia_near.py").write_text("value = 'beside the script'\n")
    (proj / "run.py").write_text("from linlens.validation import import_attr\nresult = import_attr('ia_near:value')\n")
    monkeypatch.chdir(elsewhere)
    assert str(proj) not in sys.path
    assert runpy.run_path(str(proj / "run.py"))["result"] == "beside the script"
    (proj / "ia_cfg.py").write_text("value = 3\n")
    assert import_attr("ia_cfg:value", near=proj / "config.toml") == 3  # an explicit naming file


def test_says_where_it_looked(tmp_path, monkeypatch, clean):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as exc:
        import_attr("ia_missing.sub:thing", "operator", near=tmp_path / "x" / "cfg.toml")
    msg = str(exc.value)
    assert msg.startswith("operator: cannot import 'ia_missing.sub': no module 'ia_missing' in ")
    assert str(tmp_path) in msg and "\n" not in msg
    (tmp_path / "ia_attr.py").write_text("x = 1\n")
    with pytest.raises(ModelError, match="has no attribute 'y'"):
        import_attr("ia_attr:y")
    with pytest.raises(InputFileError, match="not a 'package.module:attr' spec"):
        import_attr("no/colon/here.npy")


@pytest.mark.parametrize("load, what", [(load_model, "model"), (load_operator, "operator")])
def test_user_code_that_exits_or_raises_is_one_line_for_every_loader(tmp_path, monkeypatch, clean, load, what):
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"ia_exit_{what}.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / f"ia_raise_{what}.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(ModelError, match=rf"^{what}: importing 'ia_exit_{what}' called sys.exit\(3\)$"):
        load(f"ia_exit_{what}:x")
    with pytest.raises(ModelError, match=rf"^{what}: cannot import 'ia_raise_{what}': RuntimeError: boom$"):
        load(f"ia_raise_{what}:x")
