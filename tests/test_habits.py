"""The authors' habits: metrics at any sample count (a quick look, marked), metrics --mirror, --gpus for train,
dataset --resolution WxH, a quiet export with a bar."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_metrics import _json_lines, _write_images, stand_in_features  # noqa: F401  (a fixture)

from stylegan.cli.main import main
from stylegan.metrics import registry


def test_feature_metrics_take_any_count_and_small_ones_are_marked(tmp_path, stand_in_features, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    data = _write_images(tmp_path / "data", 30)
    assert all(n in registry.METRICS for n in ("fid200", "kid3k_full", "pr2003", "fid10"))
    assert "fid5" not in registry.METRICS and "fid0200" not in registry.METRICS and "ppl200" not in registry.METRICS
    assert registry.METRICS["fid200"].description.startswith("Frechet Inception distance, 200 generated")
    rec = registry.compute_metric("fid20", None, data, data2=data, progress=False)
    assert rec["num_gen"] == 20 and "quick look" in rec["quick_look"] and "fid20" in rec["results"]
    r = CliRunner().invoke(main, ["metrics", "--metrics", "kid25,pr203", "--data", str(data), "--data2", str(data)])
    assert r.exit_code == 0, r.output
    recs = _json_lines(r.output)
    assert [x["metric"] for x in recs] == ["kid25", "pr203"] and all("quick_look" in x for x in recs)


def test_too_few_reals_are_refused_before_any_image_is_generated_and_few_are_marked(tmp_path, stand_in_features,
                                                                                     monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    one, thirty = _write_images(tmp_path / "one", 1), _write_images(tmp_path / "thirty", 30)
    generated = []
    real_gen_stats = registry.MetricOptions._gen_stats
    monkeypatch.setattr(registry.MetricOptions, "_gen_stats", lambda self, *a, **k: generated.append(1) or
                        real_gen_stats(self, *a, **k))
    for metric, need in (("fid20", 2), ("kid20", 2), ("pr203", 4)):
        with pytest.raises(registry.MetricError, match=f"{metric}: the real data has 1 image.*at least {need}"):
            registry.compute_metric(metric, None, one, data2=thirty, progress=False)
    assert generated == []
    r = CliRunner().invoke(main, ["metrics", "--metrics", "fid20", "--data", str(one), "--data2", str(thirty)])
    assert r.exit_code == 1 and "at least 2" in r.output and "Traceback" not in r.output, r.output
    rec = registry.compute_metric("fid20", None, thirty, data2=thirty, progress=False)
    assert rec["num_real"] == 20 and rec["num_real"] <= rec["feature_network"]["dim"], rec["feature_network"]
    assert "singular" in rec["few_reals"]


def test_training_accepts_a_metric_at_any_count(tmp_path):
    from test_training import tiny_opts

    assert tiny_opts(tmp_path, metrics="fid200").validate().metric_names() == ["fid200"]
    from stylegan.training.options import OptionsError

    with pytest.raises(OptionsError, match="fid5"):
        tiny_opts(tmp_path, metrics="fid5").validate()


def test_metrics_mirror_counts_every_real_image_also_flipped(tmp_path, stand_in_features, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    data = _write_images(tmp_path / "data", 12, size=16)
    both = tmp_path / "both"
    both.mkdir()
    for p in sorted(data.iterdir()):
        img = Image.open(p)
        img.save(both / p.name)
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(both / f"flip-{p.name}")
    plain = registry.compute_metric("fid1k_full", None, data, data2=both, progress=False)
    mirrored = registry.compute_metric("fid1k_full", None, data, data2=both, progress=False, mirror=True)
    assert plain["num_real"] == 12 and mirrored["num_real"] == 24 and mirrored["mirror"] is True
    assert plain["results"]["fid1k_full"] > 1e-3 and abs(mirrored["results"]["fid1k_full"]) < 1e-6
    half = registry.compute_metric("fid10", None, data, data2=both, progress=False, mirror=True)
    assert half["num_real"] == 10  # five images and their five mirror images
    r = CliRunner().invoke(main, ["metrics", "--metrics", "fid1k_full", "--mirror", "--data", str(data),
                                  "--data2", str(both)])
    assert r.exit_code == 0, r.output
    rec = _json_lines(r.output)[-1]
    assert rec["mirror"] is True and rec["num_real"] == 24


def test_train_gpus_is_the_authors_spelling_of_procs(tmp_path, monkeypatch):
    import stylegan.training.loop

    seen = []
    monkeypatch.setattr(stylegan.training.loop, "launch", lambda opts, *a: seen.append(opts))
    base = ["train", "--data", str(tmp_path), "--outdir", str(tmp_path / "runs"), "--batch", "8"]
    r = CliRunner().invoke(main, [*base, "--gpus", "2"])
    assert r.exit_code == 0, r.output
    assert seen[-1].procs == 2
    assert CliRunner().invoke(main, [*base, "--gpus", "2", "--procs", "2"]).exit_code == 0
    r = CliRunner().invoke(main, [*base, "--gpus", "2", "--procs", "4"])
    assert r.exit_code == 2 and "--gpus 2 and --procs 4 disagree" in r.output
    r = CliRunner().invoke(main, [*base, "--gpus", "0"])
    assert r.exit_code == 2 and "--gpus" in r.output
    assert len(seen) == 2


def test_dataset_resolution_takes_width_x_height(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (60, 80, 3), dtype=np.uint8)).save(src / f"{i}.png")
    r = CliRunner().invoke(main, ["dataset", "--source", str(src), "--dest", str(tmp_path / "wide"),
                                  "--resolution", "64x48", "--quiet"])
    assert r.exit_code == 0, r.output
    pngs = sorted((tmp_path / "wide").rglob("*.png"))
    assert len(pngs) == 3 and all(Image.open(p).size == (64, 48) for p in pngs)
    r = CliRunner().invoke(main, ["dataset", "--source", str(src), "--dest", str(tmp_path / "x"),
                                  "--resolution", "64x50"])
    assert r.exit_code == 2 and "64x50 is not a size" in r.output and "64x48" in r.output and "64x32" in r.output
    r = CliRunner().invoke(main, ["dataset", "--source", str(src), "--dest", str(tmp_path / "x"),
                                  "--resolution", "64x48", "--aspect", "3:4"])
    assert r.exit_code == 2 and "give one" in r.output and not (tmp_path / "x").exists()
    r = CliRunner().invoke(main, ["dataset", "--source", str(src), "--dest", str(tmp_path / "sq"),
                                  "--resolution", "32", "--transform", "center-crop", "--quiet"])
    assert r.exit_code == 0, r.output
    assert {Image.open(p).size for p in (tmp_path / "sq").rglob("*.png")} == {(32, 32)}
    from stylegan.data.tool import parse_size

    assert parse_size("16x64") == (64, "1:4") and parse_size("64X64") == (64, None)
