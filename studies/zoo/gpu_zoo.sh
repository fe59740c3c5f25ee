#!/usr/bin/env bash
# The packaged models' trainings on a lent GPU, in one call of the device machine (a few minutes there, hours
# on the 2-core CPU). Two steps:
#
#   bash studies/zoo/gpu_zoo.sh prepare          # here: the built-in datasets as zips in .zoo/ (git-ignored)
#   bash studies/zoo/gpu_zoo.sh run [MINUTES]    # on a GPU machine, .zoo copied along: trains, writes to $OUT
#
# `run` trains these side by side on the one GPU (each in a process of its own; MINUTES of training each,
# 6 by default), then writes to $OUT (at most 8 files come back):
#   mnist32.safetensors        conditional digits (small-rpgan, --cond --cond-fade): G, G_ema, D
#   twemoji32.safetensors      all Twemoji, small-rpgan (64 channels): G, G_ema, D
#   twemoji32-wide.safetensors all Twemoji, small-rpgan with 256 channels at most: G_ema, D, in 15 MB parts
#   runs.tgz                   every run's log.txt, stats.jsonl, options.json and grids
#   env.txt                    GPU, torch, the commands
# Each network is its run's last snapshot without the optimizers' state. FID, KID and class coverage are computed
# back here on the CPU (`stylegan metrics --network FILE --data builtin:... --metrics fid2k_full,...`); the
# device machine has no Inception weights and cannot fetch them.
# Override a run's flags with MNIST_FLAGS, TWEMOJI_FLAGS, WIDE_FLAGS (they replace the defaults below). To try
# the script here: OUT=/tmp/zoo-out PY=.venv/bin/python ZOO_DEVICE=cpu bash studies/zoo/gpu_zoo.sh run 0.2
set -euo pipefail
cd "$(dirname "$0")/../.."
ZOO=.zoo

prepare() {
    local py=.venv/bin/python
    mkdir -p "$ZOO"
    grep -qx "/$ZOO/" .git/info/exclude 2>/dev/null || echo "/$ZOO/" >> .git/info/exclude
    for name in mnist5k twemoji; do
        local dir
        dir=$($py -c "from stylegan.data.builtin import resolve_data; print(resolve_data('builtin:$name', 32))")
        rm -f "$ZOO/$name-32.zip"
        (cd "$dir" && zip -qr -0 "$OLDPWD/$ZOO/$name-32.zip" .)
        echo "$ZOO/$name-32.zip from $dir ($(du -h "$ZOO/$name-32.zip" | cut -f1))"
    done
}

run() {
    local minutes=${1:-6}
    local out=${OUT:?run this on the device machine, where OUT is set}
    local py=${PY:-python3} runs=/tmp/zoo device=${ZOO_DEVICE:-cuda}
    export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
    for z in mnist5k-32 twemoji-32; do
        [ -f "$ZOO/$z.zip" ] || { echo "no $ZOO/$z.zip: run '$0 prepare' first and copy $ZOO along" >&2; return 2; }
    done
    rm -rf "$runs"; mkdir -p "$runs"
    local mnist=${MNIST_FLAGS:---cfg small-rpgan --batch 64 --r1-interval 1 --cond --cond-fade 150 300 --tick 20 --snap 2}
    local twemoji=${TWEMOJI_FLAGS:---cfg small-rpgan --batch 64 --r1-interval 1 --tick 20 --snap 2}
    local wide=${WIDE_FLAGS:---cfg small-rpgan --batch 64 --r1-interval 1 --cmax 256 --tick 20 --snap 2}
    {
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
        $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" || true
        echo "minutes per run: $minutes"
        echo "mnist32: $mnist"; echo "twemoji32: $twemoji"; echo "twemoji32-wide: $wide"
    } > "$out/env.txt" 2>&1
    cat "$out/env.txt"
    train() {  # NAME DATA FLAGS...
        local name=$1 data=$2; shift 2
        $py -m stylegan.cli.main train --outdir "$runs/$name" --data "$ZOO/$data" --device "$device" \
            --minutes "$minutes" --workers 2 "$@" > "$runs/$name.out" 2>&1
    }
    # shellcheck disable=SC2086
    train mnist32 mnist5k-32.zip $mnist &
    # shellcheck disable=SC2086
    train twemoji32 twemoji-32.zip $twemoji &
    # shellcheck disable=SC2086
    train twemoji32-wide twemoji-32.zip $wide &
    local failed=0
    for job in $(jobs -p); do wait "$job" || failed=1; done
    for name in mnist32 twemoji32 twemoji32-wide; do
        tail -n 3 "$runs/$name.out"
        local snaps nets=G,G_ema,D
        [ "$name" = twemoji32-wide ] && nets=G_ema,D  # 4x the parameters: G too would not fit what comes back
        mapfile -t snaps < <(ls "$runs/$name"/*/network-snapshot-*.safetensors 2>/dev/null | sort)
        [ ${#snaps[@]} -gt 0 ] || { echo "$name: no snapshot"; failed=1; continue; }
        $py -m stylegan.cli.main convert --source "${snaps[-1]}" --dest "$out/$name.safetensors" --networks $nets
    done
    # At most 16 MiB a file comes back: larger ones in parts (here: cat NAME.safetensors.part-* > NAME.safetensors).
    for f in "$out"/*.safetensors; do
        [ -e "$f" ] || continue
        if [ "$(stat -c %s "$f")" -gt $((15 * 1024 * 1024)) ]; then
            split -b 15M -d "$f" "$f.part-" && rm "$f"
        fi
    done
    (cd "$runs" && tar czf "$out/runs.tgz" --exclude='*.safetensors' --exclude='events.out.*' .)
    ls -la "$out"
    return $failed
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 prepare | run [MINUTES]" >&2; exit 2 ;;
esac
