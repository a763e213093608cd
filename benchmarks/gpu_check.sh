#!/usr/bin/env bash
# The GPU check, in one script, for a machine with an NVIDIA GPU:
#   1. installs the package with TensorFlow (CUDA build) and PyTorch into a virtualenv,
#   2. times the small, medium and large configs with the torch and tf-graph engines on the GPU
#      (ms per training step, training words per second),
#   3. runs the agreement check on the GPU (torch and tf-graph against the NumPy engine on the
#      CPU; TensorFloat-32 off, which both engines do on a GPU): float64 within 1e-9, float32
#      within 1e-4, without and with dropout, on the tiny and the small config,
#   4. trains the small config for 13 epochs with the torch engine,
# writing every log and result under one folder, with summary.md holding the figures.
#
#   benchmarks/gpu_check.sh [OUT_DIR]          (default: runs/gpu-check-DATE-TIME)
#
# Environment:
#   PTB_DATA_DIR    the PTB folder (default: where `ptb-lstm data` finds or downloads it)
#   PYTHON          a Python that already has ptb-lstm[tf,torch] installed: skips step 1
#   VENV            the virtualenv step 1 creates or reuses (default: runs/gpu-check-venv)
#   PIP_ARGS        extra pip arguments for step 1 (say --find-links DIR on a machine offline)
#   GPU_CHECK_QUICK=1  a short dry run: the tiny config, a few steps, 20 training steps, and
#                   the CPU when there is no GPU (to check the script itself, not to measure)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK="${GPU_CHECK_QUICK:-0}"
OUT="${1:-runs/gpu-check-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), output in $OUT (quick: $QUICK)"

# 1. Install ---------------------------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
    echo "== using $PY as it is (PYTHON is set)"
else
    VENV="${VENV:-runs/gpu-check-venv}"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    PY="$VENV/bin/python"
    echo "== installing into $VENV"
    # shellcheck disable=SC2086  # PIP_ARGS holds several words on purpose
    "$PY" -m pip install --quiet ${PIP_ARGS:-} --upgrade pip
    # shellcheck disable=SC2086
    "$PY" -m pip install --quiet ${PIP_ARGS:-} -e '.[tf,torch]' 'tensorflow[and-cuda]'
fi

# 2. The machine -----------------------------------------------------------------------------
{
    date -u +%Y-%m-%dT%H:%M:%SZ
    git rev-parse HEAD 2>/dev/null || true
    nvidia-smi 2>/dev/null || echo "nvidia-smi: not found"
    "$PY" - <<'EOF'
import platform
import numpy, tensorflow as tf, torch
print("python", platform.python_version(), "numpy", numpy.__version__)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
      torch.backends.cudnn.version(), "gpu:",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
print("tensorflow", tf.__version__, "gpus:", tf.config.list_physical_devices("GPU"))
EOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    DEVICE=cuda
elif [ "$QUICK" = 1 ]; then
    DEVICE=cpu
    echo "== no GPU that PyTorch sees: CPU fallback (quick mode); these figures are no GPU's"
else
    echo "gpu_check: PyTorch sees no CUDA GPU (see $OUT/environment.txt); this script measures" \
         "a GPU. For a dry run on the CPU: GPU_CHECK_QUICK=1 $0" >&2
    exit 2
fi
echo "$DEVICE" > "$OUT/device.txt"

if [ "$QUICK" = 1 ]; then
    CONFIGS="tiny"; BENCH=(--steps 3 --warmup 1); AGREE_CONFIGS="tiny"; AGREE_STEPS=2
    TRAIN=(--config tiny --max-steps 20 --log-every 5)
else
    CONFIGS="small medium large"; BENCH=(--steps 50 --warmup 5); AGREE_CONFIGS="tiny small"
    AGREE_STEPS=5
    TRAIN=(--config small)
fi
PTB=(); [ -n "${PTB_DATA_DIR:-}" ] && PTB=(--data-dir "$PTB_DATA_DIR")
"$PY" -m ptb_lstm data "${PTB[@]}"

# 3. Timing ----------------------------------------------------------------------------------
: > "$OUT/bench.jsonl"
for config in $CONFIGS; do
    for engine in torch tf-graph; do
        echo "== bench $engine $config on $DEVICE"
        "$PY" -m ptb_lstm bench --engine "$engine" --config "$config" --device "$DEVICE" \
            "${BENCH[@]}" --json | tee -a "$OUT/bench.jsonl"
    done
done

# 4. Agreement on the GPU ----------------------------------------------------------------------
# `agree` puts each engine where --device auto does: the GPU, when there is one.
status=0
for config in $AGREE_CONFIGS; do
    echo "== agree $config (the table is in summary.md)"
    "$PY" -m ptb_lstm agree --config "$config" --engine torch --engine tf-graph \
        --steps "$AGREE_STEPS" "${PTB[@]}" --json > "$OUT/agree-$config.json" || status=1
done

# 5. The small config for 13 epochs with the torch engine --------------------------------------
echo "== train ${TRAIN[*]} --engine torch --device $DEVICE"
"$PY" -m ptb_lstm train "${TRAIN[@]}" --engine torch --device "$DEVICE" "${PTB[@]}" \
    --out "$OUT/train-torch" | tee "$OUT/train-torch.log"

# 6. Summary ---------------------------------------------------------------------------------
"$PY" - "$OUT" "$DEVICE" <<'EOF'
import json
import sys
from pathlib import Path

from ptb_lstm.config import PRESETS

out, device = Path(sys.argv[1]), sys.argv[2]


def preset(record: dict) -> str:
    """The preset a bench record timed, from its shape."""
    return next((name for name, c in PRESETS.items()
                 if (c.hidden_size, c.num_steps, c.batch_size)
                 == (record["hidden_size"], record["num_steps"], record["batch_size"])), "?")


lines = [f"# GPU check ({'CUDA GPU' if device == 'cuda' else 'CPU fallback: no GPU figures'})",
         "", "Environment: environment.txt; full log: gpu_check.log.", "",
         "| engine | config | device | dtype | train ms/step | words/s | eval ms/step |",
         "|---|---|---|---|---:|---:|---:|"]
for line in (out / "bench.jsonl").read_text().splitlines():
    r = json.loads(line)
    lines.append(f"| {r['engine']} | {preset(r)} | "
                 f"{r['device']} | {r['dtype']} | {r['train_ms_per_step']:.2f} | "
                 f"{r['words_per_second']:,.0f} | {r['eval_ms_per_step']:.2f} |")
lines += ["", "| config | engine | dtype | dropout | losses | params | valid ppl |",
          "|---|---|---|---:|---:|---:|---:|"]
passed = True
for path in sorted(out.glob("agree-*.json")):
    result = json.loads(path.read_text())
    passed &= result["passed"]
    for r in result["rows"]:
        lines.append(f"| {path.stem[len('agree-'):]} | {r['engine']} | {r['dtype']} | "
                     f"{r['dropout']:g} | {r['loss']:.2e} | {r['params']:.2e} | "
                     f"{r['perplexity']:.2e} |")
lines += ["", f"Agreement (1e-9 in float64, 1e-4 in float32): {'PASSED' if passed else 'FAILED'}",
          ""]
records = [json.loads(x) for x in (out / "train-torch" / "metrics.jsonl").read_text().splitlines()]
epochs = [r for r in records if r.get("event") == "epoch"]
test = [r for r in records if r.get("event") == "test"]
steps = [r for r in records if r.get("event") == "step"]
if epochs:
    last = epochs[-1]
    lines.append(f"Training with the torch engine: {len(epochs)} epochs, train perplexity "
                 f"{last['train_perplexity']:.2f}, valid {last['valid_perplexity']:.2f}"
                 + (f", test {test[-1]['test_perplexity']:.2f}" if test else "")
                 + f", {last['ms_per_step']:.2f} ms/step, wall time "
                 f"{last['wall_time'] / 60:.1f} min (train-torch/).")
else:
    lines.append(f"Training with the torch engine: stopped after step {steps[-1]['step']} "
                 f"(quick mode), loss {steps[-1]['loss']:.3f} (train-torch/).")
(out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
print("\n".join(lines))
EOF
echo "== done: $OUT/summary.md"
exit $status
