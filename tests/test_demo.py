"""`make demo` end to end, at a budget of seconds: the Makefile's own training flags, then every command the demo
runs on the last snapshot. Slow (about a minute and a half on 2 cores): run by `make test-all`."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def demo_train_flags() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    m = re.search(r"^DEMO_TRAIN := (.*?)(?<!\\)\n", text, re.S | re.M)
    return m.group(1).replace("\\\n", " ").split()


@pytest.mark.slow
def test_demo_commands_end_to_end(tmp_path):
    flags = demo_train_flags()
    assert flags[flags.index("--cfg") + 1] == "small" and "--minutes" in flags
    flags[flags.index("--outdir") + 1] = str(tmp_path / "demo")
    flags[flags.index("--minutes") + 1] = "0.25"
    run = lambda *a: subprocess.run([str(BIN / "stylegan"), *map(str, a)], capture_output=True, text=True,  # noqa: E731
                                    timeout=600)
    r = run("train", *flags)
    assert r.returncode == 0, r.stdout + r.stderr
    snaps = sorted((tmp_path / "demo").glob("*/network-snapshot-*.safetensors"))
    assert snaps, r.stdout
    net = snaps[-1]
    stats = [json.loads(line) for line in (net.parent / "stats.jsonl").read_text().splitlines()]
    assert 0.25 <= stats[-1]["train_minutes"] < 0.6 and stats[-1]["kimg"] > 0
    for args in (("generate", "--network", net, "--seeds", "0-63", "--trunc", "0.8", "--grid", "--outdir",
                  tmp_path / "images"),
                 ("style-mixing", "--network", net, "--rows", "1,2,3,4", "--cols", "5,6,7,8", "--styles", "0-3",
                  "--outdir", tmp_path / "mixing"),
                 ("metrics", "--network", net, "--metrics", "coverage1k")):
        r = run(*args)
        assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "images" / "grid.png").is_file()
    assert list((tmp_path / "mixing").glob("*.png"))
    record = json.loads((net.parent / "metric-coverage1k.jsonl").read_text().splitlines()[-1])
    assert 1 <= record["results"]["coverage1k_classes_covered"] <= 10
