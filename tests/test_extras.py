"""A feature whose package is missing says, in one line, which extra installs it (stylegan.extras)."""
import sys

import pytest

from stylegan.extras import EXTRAS, MissingExtra, extra_for, require

ROOT_PYPROJECT = __import__("pathlib").Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.mark.parametrize("extra,module", [(e, m) for e, (_, mods) in EXTRAS.items() for m in mods])
def test_each_missing_package_names_its_extra(monkeypatch, extra, module):
    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails as if it were not installed
    with pytest.raises(MissingExtra) as e:
        require(module)
    msg = str(e.value)
    assert "\n" not in msg and f"pip install 'stylegan[{extra}]'" in msg and repr(module) in msg


def test_a_present_package_is_returned_and_submodules_map_to_their_extra():
    assert require("json").dumps([]) == "[]"
    assert extra_for("matplotlib.pyplot") == "plots" and extra_for("uvicorn") == "serve"
    with pytest.raises(KeyError):
        extra_for("numpy")


def test_a_broken_package_is_not_reported_as_missing(monkeypatch, tmp_path):
    """Only the package's own absence is a missing extra; an import error inside it stays what it is."""
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        require("matplotlib")


def test_the_extras_are_declared_in_pyproject():
    import tomllib

    declared = tomllib.loads(ROOT_PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    core = tomllib.loads(ROOT_PYPROJECT.read_text())["project"]["dependencies"]
    assert not any("==" in d for d in core), core  # nothing in the core pinned exactly
    for name in ("fastapi", "uvicorn", "matplotlib", "tensorboard", "imageio-ffmpeg"):
        assert not any(d.startswith(name) for d in core), name  # each is its feature's extra, not the core


def test_a_command_whose_extra_is_missing_ends_with_one_line(monkeypatch):
    """`stylegan serve` without fastapi: one line naming the extra, no traceback."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    monkeypatch.setitem(sys.modules, "fastapi", None)
    r = CliRunner().invoke(main, ["serve", "--network", "mnist32"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip() == ("Error: 'fastapi' is not installed (the web service, stylegan serve): "
                                "pip install 'stylegan[serve]'")


def test_training_without_tensorboard_says_how_to_get_its_logs(monkeypatch, tmp_path):
    from stylegan.training.runs import RunLog

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    log = RunLog(tmp_path, enabled=True)
    assert log.tb is None
    assert "no TensorBoard logs, 'tensorboard' is not installed" in (tmp_path / "log.txt").read_text()
    assert "pip install 'stylegan[tensorboard]'" in (tmp_path / "log.txt").read_text()


def test_generate_needs_no_extra(monkeypatch, tmp_path):
    """The core install (no extra) generates: `stylegan generate --network mnist32 --class 3` with every
    extra's package made unimportable."""
    from click.testing import CliRunner

    from stylegan.cli.main import main

    for _, modules in EXTRAS.values():
        for module in modules:
            monkeypatch.setitem(sys.modules, module, None)
    r = CliRunner().invoke(main, ["generate", "--network", "mnist32", "--class", "3", "--seeds", "0-1",
                                  "--outdir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert len(list(tmp_path.glob("*.png"))) == 2
