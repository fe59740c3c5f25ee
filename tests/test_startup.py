"""The command line starts at once: its help and option parsing load no PyTorch (imported by the commands that
compute), and ``import stylegan`` imports the public names on first use."""
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_command_line_and_the_package_import_without_pytorch():
    assert "torch" not in _modules_after("import stylegan.cli.main")
    assert "torch" not in _modules_after("import stylegan")
    r = subprocess.run([str(BIN / "stylegan"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "generate" in r.stdout and "train" in r.stdout


def test_a_usage_error_comes_before_pytorch_is_loaded():
    code = ("from click.testing import CliRunner\nfrom stylegan.cli.main import main\n"
            "r = CliRunner().invoke(main, ['generate', '--network', 'x', '--outdir', 'o', '--seeds', 'a-b'])\n"
            "assert r.exit_code == 2 and 'cannot parse' in r.output, r.output")
    assert "torch" not in _modules_after(code)


def test_the_public_names_load_on_first_use():
    import stylegan

    assert callable(stylegan.load) and stylegan.Generator.__name__ == "Generator"
    assert set(stylegan.__all__) <= set(dir(stylegan))
    assert stylegan.checkpoint.save_checkpoint is stylegan.save_checkpoint  # submodules as before
    try:
        stylegan.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
