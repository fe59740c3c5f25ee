"""The device chooser (``--device``), the one code path of generation, the tools, the metrics and training:
CPU, CUDA and Apple's MPS with the hardware's availability monkeypatched (no MPS device here), float32 where
float64 would be used on MPS, and one-line refusals."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from stylegan import device as devmod
from stylegan.cli.common import _device
from stylegan.cli.main import main
from stylegan.device import DeviceError, choose_device, wide_float


@pytest.fixture
def hardware(monkeypatch):
    """Set what PyTorch reports: ``hardware(cuda=..., mps=...)``."""
    def set_(cuda: bool = False, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_


@pytest.mark.parametrize("cuda, mps, name, expected", [
    (False, False, "auto", "cpu"), (True, False, "auto", "cuda"), (False, True, "auto", "cpu"),
    (True, True, "auto", "cuda"), (False, False, "cpu", "cpu"), (True, False, "cuda:1", "cuda:1"),
    (False, True, "mps", "mps"), (True, True, "cpu", "cpu"),
])
def test_the_chooser_returns_the_device_asked_for_when_present(hardware, cuda, mps, name, expected):
    hardware(cuda=cuda, mps=mps)
    assert choose_device(name) == torch.device(expected)
    assert _device(name) == torch.device(expected)  # the command line's --device goes through it


@pytest.mark.parametrize("name, cuda, message", [
    ("mps", True, "--device mps: Apple's MPS is not available"),
    ("cuda", False, "--device cuda: CUDA is not available on this machine"),
    ("cuda:0", False, "--device cuda:0: CUDA is not available on this machine"),
    ("tpu", True, "--device 'tpu': expected auto, cpu, cuda, cuda:N or mps"),
    ("cuda:x", True, "expected auto, cpu, cuda, cuda:N or mps"),
])
def test_a_device_that_is_not_here_or_malformed_is_one_line(hardware, name, cuda, message):
    hardware(cuda=cuda, mps=False)
    with pytest.raises(DeviceError) as e:
        choose_device(name)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_without_the_mps_backend_the_message_says_so(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: False)
    with pytest.raises(DeviceError, match="this PyTorch was built without it"):
        choose_device("mps")
    monkeypatch.delattr(torch.backends, "mps")  # a PyTorch older than the MPS backend
    assert not devmod.mps_available()


def test_float64_paths_pick_float32_on_mps():
    assert wide_float("cpu") == torch.float64 and wide_float(torch.device("cuda:0")) == torch.float64
    assert wide_float("mps") == torch.float32 and wide_float(torch.device("mps")) == torch.float32


def test_the_commands_refuse_mps_in_one_line_when_absent(hardware, tmp_path):
    hardware(cuda=False, mps=False)
    for args in (["generate", "--network", "mnist32", "--seeds", "0", "--outdir", str(tmp_path / "o")],
                 ["train", "--data", "builtin:mnist5k", "--outdir", str(tmp_path / "r"), "--dry-run"]):
        r = CliRunner().invoke(main, [*args, "--device", "mps"])
        assert r.exit_code != 0 and "Apple's MPS is not available" in r.output, r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_training_accepts_mps_and_joins_it_through_the_chooser(hardware):
    from stylegan.training.distributed import init_distributed
    from stylegan.training.options import OptionsError, TrainingOptions

    hardware(cuda=False, mps=True)
    TrainingOptions(data="x", device="mps").validate()
    with pytest.raises(OptionsError, match="--device must be auto, cpu, cuda, cuda:N or mps"):
        TrainingOptions(data="x", device="tpu").validate()
    assert init_distributed("mps").device == torch.device("mps")
    assert init_distributed("auto").device == torch.device("cpu")
