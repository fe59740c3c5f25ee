"""Transfer learning from a packaged base: ``stylegan train --resume NAME`` starts a new run from the base's G_ema
and D with the base's recipe, resumes like any run, and refuses a base that does not fit the data."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan import pretrained
from stylegan.checkpoint import read_checkpoint
from stylegan.cli.main import main
from stylegan.interop import convert
from stylegan.training.loop import Trainer
from stylegan.training.options import OptionsError
from stylegan.training.runs import latest_snapshot, resume_options
from test_training import make_images, tiny_opts


@pytest.fixture
def base(tmp_path, monkeypatch):
    """A packaged base ``tinybase`` (G_ema and D of a few steps of training at γ 0.5, batch 4), registered in
    a temporary package folder."""
    trainer = Trainer(tiny_opts(tmp_path / "b", gamma=0.5, glr=0.001))
    for _ in range(3):
        trainer.step()
    snap = trainer.save_snapshot(tmp_path / "snap.safetensors")
    folder = tmp_path / "pkg"
    folder.mkdir()
    convert(snap, folder / "tinybase.safetensors", networks=["G_ema", "D"])
    monkeypatch.setattr(pretrained, "FOLDER", folder)
    monkeypatch.setattr(pretrained, "PRETRAINED", {"tinybase": "tinybase.safetensors"})
    return trainer


def _gray_images(folder, n=8, res=16):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((res, res), 20 * i, np.uint8), mode="L").save(folder / f"{i}.png")
    return folder


def test_convert_keeps_how_the_networks_were_trained(base):
    extra = read_checkpoint(pretrained.resolve_network("tinybase")).extra
    assert extra["trained_with"]["gamma"] == 0.5 and extra["kimg"] == pytest.approx(0.012)
    assert "training" not in extra and "options" not in extra


def test_transfer_takes_the_base_recipe_and_the_run_flags(base, tmp_path):
    data = make_images(tmp_path / "target", seed=5)
    opts = resume_options("tinybase", str(tmp_path / "new"), {"data": str(data), "kimg": 0.02})
    assert opts.gamma == 0.5 and opts.glr == 0.001 and opts.batch == 4  # the base's recipe
    assert opts.data == str(data) and opts.outdir == str(tmp_path / "new") and opts.kimg == 0.02  # this run's
    t = Trainer(opts)
    assert t.cur_nimg == 0
    for name, module in (("G", t.G), ("G_ema", t.G_ema)):  # G starts as the base's G_ema
        for (n, p), q in zip(module.named_parameters(), base.G_ema.parameters()):
            assert torch.equal(p, q), (name, n)
    for (n, p), q in zip(t.D.named_parameters(), base.D.parameters()):
        assert torch.equal(p, q), n


def test_transfer_by_name_trains_and_resumes(base, tmp_path):
    data = make_images(tmp_path / "target", seed=5)
    args = ["train", "--resume", "tinybase", "--data", str(data), "--outdir", str(tmp_path / "runs"), "--kimg",
            "0.016", "--tick", "0.008", "--snap", "1", "--workers", "0", "--device", "cpu", "--freezed", "1"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    first = latest_snapshot(tmp_path / "runs")
    saved = json.loads((first.parent / "options.json").read_text())["options"]
    assert saved["gamma"] == 0.5 and saved["data"] == str(data) and saved["freezed"] == 1
    assert "from the networks of" in (first.parent / "log.txt").read_text()
    frozen = [k for k in read_checkpoint(first).state_dict("D") if k.startswith("blocks.16.")]
    base_D = base.D.state_dict()
    assert frozen and all(torch.equal(read_checkpoint(first).state_dict("D")[k], base_D[k]) for k in frozen)
    first_kimg = read_checkpoint(first).extra["kimg"]
    r = CliRunner().invoke(main, ["train", "--resume", "latest", "--outdir", str(tmp_path / "runs"), "--kimg",
                                  "0.032"])
    assert r.exit_code == 0, r.output
    last = latest_snapshot(tmp_path / "runs")
    assert last.parent == first.parent and read_checkpoint(last).extra["kimg"] > first_kimg


@pytest.mark.parametrize("what", ["channels", "resolution", "classes"])
def test_a_base_that_does_not_fit_is_refused_before_training(base, tmp_path, what):
    if what == "channels":
        flags = {"data": str(_gray_images(tmp_path / "gray"))}
    elif what == "resolution":
        flags = {"data": str(make_images(tmp_path / "big", res=32))}
    else:
        data = make_images(tmp_path / "labelled")
        (data / "dataset.json").write_text(json.dumps({"labels": [[f"{i:03d}.png", i % 2] for i in range(24)]}))
        flags = {"data": str(data), "cond": True}
    with pytest.raises(OptionsError, match=f"^{what}: .*tinybase"):
        Trainer(resume_options("tinybase", str(tmp_path / "new"), flags))
    r = CliRunner().invoke(main, ["train", "--resume", "tinybase", "--outdir", str(tmp_path / "cli"), "--workers",
                                  "0", "--device", "cpu", *sum(([f"--{k}", str(v)] for k, v in flags.items()
                                                                if k != "cond"), []),
                                  *(["--cond"] if flags.get("cond") else [])])
    assert r.exit_code == 2 and f"{what}: " in r.output and "Traceback" not in r.output
    assert not (tmp_path / "cli").exists()


def test_an_unknown_name_says_which_names_exist(base, tmp_path):
    r = CliRunner().invoke(main, ["train", "--resume", "nobase", "--data", "x", "--outdir", str(tmp_path)])
    assert r.exit_code == 2 and "known names: tinybase" in r.output


def test_the_packaged_bases_hold_what_transfer_needs():
    """Every packaged network is a base: G_ema and D, and the options it was trained with."""
    for name in pretrained.names():
        if not pretrained.is_available(name):
            continue
        ckpt = read_checkpoint(pretrained.resolve_network(name))
        assert {"G_ema", "D"} <= set(ckpt.networks), name
        assert isinstance(ckpt.extra.get("trained_with"), dict), name
        assert pretrained.model_card(name), name
