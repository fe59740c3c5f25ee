"""The documentation runs as written: every `stylegan` command of a ```bash block in README.md and docs/ is
either run here against the packaged networks (in a temporary folder) or named in SKIP with the reason, and
the README's Python example runs as it stands."""
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from stylegan.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands that are not run here, and why (long training, the user's own files, servers, installs).
SKIP = {
    "stylegan dataset --source ~/photos --dest data/faces256.zip --resolution 256 --transform center-crop":
        "the user's photos",
    "stylegan dataset --source ~/cars --dest data/cars.zip --resolution 512 --aspect 4:3": "the user's photos",
    "stylegan dataset --source builtin:twemoji-faces --dest data/faces32.zip":
        "builds the set (tests/test_data.py writes it at 8x8)",
    "stylegan train --outdir runs --data data/faces256.zip --batch 32 --mirror --kimg 25000": "training",
    "stylegan train --outdir runs --resume latest": "training",
    "stylegan train --data builtin:mnist5k --cond ...": "training (an outline)",
    "stylegan train --cfg progan --outdir runs --data data/faces256.zip --fade-kimg 600 --stable-kimg 600":
        "training",
    "stylegan train --cfg small --data builtin:mnist5k --minutes 5 --procs 2": "training",
    "stylegan train --cfg small-rpgan-30min --data builtin:mnist5k --minutes 30 --procs 2": "training",
    "stylegan train --outdir ~/runs/s30 --cfg small-rpgan-30min --data builtin:mnist5k --minutes 30 --procs 2":
        "training",
    "stylegan train --outdir ~/runs/s30 --resume latest --kimg 135.8 --minutes 200": "training",
    "stylegan train --outdir ~/runs/s30-ema10 --cfg small-rpgan-30min --data builtin:mnist5k --ema-kimg 10 "
    "--ema-rampup 0.1 --kimg 135.8 --procs 2": "training",
    "stylegan train --outdir ~/runs/scratch30 --cfg small-rpgan --batch 64 --r1-interval 1 --data builtin:mnist5k --minutes 30 --procs 2":
        "training",
    "stylegan train --outdir ~/runs/mnist-b16c --cfg small-rpgan --data builtin:mnist5k --cond --cond-fade 200 330 "
    "--procs 2 --minutes 60": "training (the packaged mnist32, its first run)",
    "stylegan convert --source ~/runs/mnist-b16c/00000-*/network-snapshot-000258.224.safetensors --dest "
    "base.safetensors --networks G_ema,D": "a snapshot of that run",
    "stylegan train --outdir ~/runs/b16c-hold --resume base.safetensors --cond --data builtin:mnist5k --gamma 0.1 "
    "--gamma-end 0.1 --procs 2 --minutes 23": "training (the packaged mnist32, held at its lambda)",
    "stylegan train --outdir ~/runs/polish --resume ~/runs/b16c-hold/00000-*/network-snapshot-000097.344.safetensors "
    "--data builtin:mnist5k --cond --glr 0.0005 --dlr 0.0005 --procs 1 --snap 5 --minutes 85":
        "training (the packaged mnist32, its last stretch at a quarter of the rate)",
    "stylegan train --outdir ~/runs/scratch30-b16 --cfg small-rpgan --data builtin:mnist5k --minutes 30 --procs 2":
        "training",
    "stylegan train --outdir ~/runs/scratch30-lr3 --cfg small-rpgan --data builtin:mnist5k --glr 0.003 --dlr 0.003 "
    "--minutes 30 --procs 2": "training",
    "stylegan train --outdir ~/runs/emoji-rp16 --cfg small-rpgan --data builtin:twemoji-nofaces --minutes 30 --threads 1":
        "training",
    "stylegan train --resume twemoji-nofaces32 --data builtin:twemoji-faces --minutes 5 --procs 2": "training",
    "stylegan train --cfg small-rpgan --batch 64 --r1-interval 1 --data builtin:mnist5k --cond --cond-fade 90 150 --threads 1 --minutes 75":
        "training",
    "stylegan train --resume twemoji-nofaces32 --data ~/data/icons32.zip --freezed 1 --kimg 200": "training",
    "stylegan train --resume latest --kimg 400": "training",
    "stylegan train --outdir runs --data builtin:mnist5k --cond --cfg stylegan2 --cbase 2048 --cmax 64 --map-depth 2 "
    "--batch 64 --gamma 0.01 --mbstd-group 32 --pl-weight 0 --style-mixing 0 --aug diffaug --threads 1": "training",
    "stylegan convert --source runs/00000-.../network-snapshot-000161.safetensors --dest mnist32.safetensors "
    "--networks G_ema,D": "a training run's snapshot",
    "stylegan convert --source stylegan2-ffhq-256x256.pkl --dest ffhq256.safetensors": "the authors' file",
    "stylegan convert --source 550000.pt --dest ffhq.safetensors": "the user's file",
    "stylegan convert --source ffhq.safetensors --dest ffhq-rosinality.pt": "the user's file",
    "stylegan convert --source runs/.../network-snapshot-000100.safetensors --dest g.safetensors --networks G_ema":
        "a training run's snapshot",
    "stylegan generate --network stylegan2-ffhq-256x256.pkl --seeds 0-7 --trunc 0.7 --outdir out": "the authors' file",
    "stylegan weights": "installs packages",
    "stylegan generate --network stylegan2-ffhq-256x256 --seeds 0-3 --trunc 0.7 --outdir out":
        "downloads a published network (no network access in tests)",
    "stylegan generate --network https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metfaces.pkl "
    "--seeds 0 --outdir out": "downloads a published network (no network access in tests)",
    "stylegan generate --network stylegan3-r-afhqv2-512x512 --seeds 0-3 --rotate 30 --outdir afhq":
        "downloads a published network (no network access in tests)",
    "stylegan train --outdir runs --data data/faces256.zip --device mps": "training, on an Apple GPU",
    "stylegan metrics --network run/network-snapshot-000500.safetensors --metrics fid50k_full,kid50k_full,pr50k3_full "
    "--data data/ffhq256.zip": "a training run and the user's data",
    "stylegan metrics --metrics fid10k,kid10k,pr10k3 --data real_images/ --data2 samples_of_any_generator/":
        "the user's images",
    "stylegan metrics --network mnist32 --metrics coverage1k": "a metric over 1,000 images (tests/test_metrics.py)",
    "stylegan serve": "a server that runs until stopped (tests/test_serve.py)",
    "stylegan serve --network runs/00000-.../network-snapshot-000500.safetensors --port 8000 --max-queue 16":
        "a server that runs until stopped",
    "stylegan serve --network mnist32 --static site/": "exports ONNX (tests/test_static_site.py)",
    "stylegan export --network mnist32 --onnx mnist32.onnx [--noise const|none|random] [--force]":
        "a synopsis; the ONNX export (tests/test_export.py)",
}


def bash_commands() -> list[tuple[str, str]]:
    """(page, command) for every line of a ```bash block that starts with `stylegan `, continuation lines
    joined and the comment removed."""
    out = []
    for page in PAGES:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["stylegan"]:
                    out.append((page.relative_to(ROOT).as_posix(), " ".join(words)))
    return out


def python_example(page: str, first_line: str) -> str:
    """The ```python block of ``page`` that starts with ``first_line``."""
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / page).read_text(encoding="utf-8"), flags=re.S | re.M)
    return next(b for b in blocks if b.startswith(first_line))


COMMANDS = bash_commands()
RUN = [(page, cmd) for page, cmd in COMMANDS if cmd not in SKIP]


def test_every_command_is_run_or_skipped_for_a_reason():
    assert len(RUN) >= 5  # generate, info, style-mixing on the packaged networks at least
    stale = set(SKIP) - {cmd for _, cmd in COMMANDS}
    assert not stale, f"SKIP names commands no page holds any more: {stale}"


@pytest.mark.parametrize("page,command", RUN, ids=[f"{p}: {c[:60]}" for p, c in RUN])
def test_command_runs_as_written(page, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, shlex.split(command)[1:])
    assert r.exit_code == 0, f"{page}: `{command}` failed:\n{r.output}"


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = python_example("README.md", "import torch, stylegan")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the project's own README
    assert os.path.isfile("first.png")
    assert namespace["strip"].shape[0] == 3 and namespace["img"].shape == (4, 1, 32, 32)
