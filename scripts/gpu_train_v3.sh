#!/usr/bin/env bash
# One command, the whole chorus-shapes-v3 recipe (issue 14 part 2) on a CUDA machine: the autoencoder
# (chorus train-vae, 9x64x64 clips, x4 spatial / x4 temporal, z_dim 8), the base transformer on its latents
# (patch (1,2,2), configs/chorus-shapes-v3.json), the 4-step distillation on Wan's linear grid (shift 3),
# then the checker: AE reconstructions and `chorus eval` at 16 (base) and 4 (student) steps, held-in and out.
# Everything resumes from training/chorus-shapes-v3-{vae,base,distill}/checkpoint; the student is copied to
# models-candidates/chorus-shapes-v3 (a model folder; NOT installed as the default).
#   scripts/gpu_train_v3.sh             full run (budgets in minutes: VAE_MIN, BASE_MIN, DISTILL_MIN)
#   scripts/gpu_train_v3.sh --smoke     2 steps of each stage, 8 eval prompts, into runs/gpu-v3-smoke (CPU ok)
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS=${CHORUS:-.venv/bin/chorus}
if [[ "${1:-}" == "--smoke" ]]; then
  ROOT=runs/gpu-v3-smoke; STEPS=(--steps 2); PROMPTS=8; EVAL_SPECS=8; CAND=runs/gpu-v3-smoke/candidates
else
  ROOT=training; STEPS=(); PROMPTS=200; EVAL_SPECS=200; CAND=models-candidates
fi
if .venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then DEV=cuda; else DEV=cpu; fi
echo "device: $DEV; runs under $ROOT"
VAE=$ROOT/chorus-shapes-v3-vae BASE=$ROOT/chorus-shapes-v3-base STUDENT=$ROOT/chorus-shapes-v3-distill
mkdir -p "$ROOT" "$CAND" "$VAE" "$BASE" "$STUDENT"

"$CHORUS" train-vae --config configs/chorus-shapes-vae.json --out "$VAE" --device "$DEV" \
  --minutes "${VAE_MIN:-60}" "${STEPS[@]}" --eval-specs "$EVAL_SPECS" | tee -a "$VAE/recon.jsonl"
"$CHORUS" train --config configs/chorus-shapes-v3.json --out "$BASE" --device "$DEV" \
  --vae "$VAE/checkpoint" --minutes "${BASE_MIN:-120}" "${STEPS[@]}"
"$CHORUS" distill --teacher "$BASE/checkpoint" --out "$STUDENT" --device "$DEV" \
  --flow-shift 3 --sigma-grid linear --teacher-steps 16 --minutes "${DISTILL_MIN:-45}" "${STEPS[@]}"

rm -rf "$CAND/chorus-shapes-v3"; mkdir -p "$CAND/chorus-shapes-v3"
cp -r "$STUDENT/checkpoint/transformer" "$STUDENT/checkpoint/vae" "$STUDENT/checkpoint/chorus_model.json" \
  "$CAND/chorus-shapes-v3/"
rm -rf "$CAND/chorus-shapes-v3-base"; mkdir -p "$CAND/chorus-shapes-v3-base"
cp -r "$BASE/checkpoint/transformer" "$BASE/checkpoint/vae" "$BASE/checkpoint/chorus_model.json" \
  "$CAND/chorus-shapes-v3-base/"
for split in "" "--held-out"; do
  CHORUS_DEVICE=$DEV CHORUS_MODELS_DIR=$CAND "$CHORUS" eval --model chorus-shapes-v3-base --steps 16 \
    --num-prompts "$PROMPTS" $split --json | tee -a "$BASE/eval.jsonl"
  CHORUS_DEVICE=$DEV CHORUS_MODELS_DIR=$CAND "$CHORUS" eval --model chorus-shapes-v3 --steps 4 \
    --num-prompts "$PROMPTS" $split --json | tee -a "$STUDENT/eval.jsonl"
done
du -sh "$CAND/chorus-shapes-v3"  # must stay <= 20 MB
