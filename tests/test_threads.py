"""The thread count of a training process: the idle cores unless told otherwise."""
import torch
from click.testing import CliRunner

from stylegan.cli.main import main
from stylegan.cpu import threads as th


def test_idle_share():
    assert th.idle_share((100, 1000), (150, 1100)) == 0.5
    assert th.idle_share((100, 1000), (100, 1000)) == 1.0  # no time passed
    assert th.idle_share((100, 1000), (300, 1100)) == 1.0  # clamped


def test_threads_for_idle_cores():
    assert th.threads_for(1, 2.0, 2) == 2  # an idle 2-core machine: both
    assert th.threads_for(1, 1.8, 2) == 2  # a little noise does not cost a thread
    assert th.threads_for(1, 1.5, 2) == 1  # one core is taken
    assert th.threads_for(1, 0.05, 2) == 1  # all taken: still one
    assert th.threads_for(2, 2.0, 2) == 1  # two processes share two cores
    assert th.threads_for(2, 8.0, 16) == 4
    assert th.threads_for(1, None, 8) == 8  # unknown: all available cores
    assert th.threads_for(1, 32.0, 4) == 4  # never more than available


def test_training_threads_given_env_or_measured(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert th.training_threads(3, 1) == 3
    monkeypatch.setattr(th, "idle_cores", lambda interval=0.3: 0.1)
    monkeypatch.setattr(th, "available_cores", lambda: 2)
    assert th.training_threads(None, 1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert th.training_threads(None, 1) is None  # the user's setting is kept


def test_torch_threads_scoped():
    before = torch.get_num_threads()
    with th.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with th.torch_threads(None):
        assert torch.get_num_threads() == before


def test_idle_cores_reads_this_machine():
    idle = th.idle_cores(0.05)
    assert idle is None or 0 <= idle <= (__import__("os").cpu_count() or 1)


def test_train_sets_and_logs_threads(tmp_path, monkeypatch):
    from test_training import make_images

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        r = CliRunner().invoke(main, ["train", "--outdir", str(tmp_path / "runs"), "--data",
                                      str(make_images(tmp_path / "data")), "--cbase", "256", "--cmax", "32",
                                      "--map-depth", "2", "--batch", "4", "--kimg", "0.004", "--tick", "0.004",
                                      "--workers", "0", "--threads", "1"])
        assert r.exit_code == 0, r.output
        log = next((tmp_path / "runs").iterdir()).joinpath("log.txt").read_text()
        assert "1 thread(s) per process" in log
        assert torch.get_num_threads() == before  # restored: the command's setting does not outlive it
    finally:
        torch.set_num_threads(before)
    r = CliRunner().invoke(main, ["train", "--outdir", str(tmp_path / "r2"), "--data", "x", "--threads", "0"])
    assert r.exit_code != 0 and "--threads" in r.output
