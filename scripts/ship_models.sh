#!/usr/bin/env bash
# Reproduce the shipped models in checkpoints/ on 2 CPU cores: forest data, the quick recipe per head, the ONNX
# step export (parity-checked against the checkpoint) and the training curves. Every stage resumes.
#   bash scripts/ship_models.sh                    # cfc_ncp, lstm, ltc_ncp
#   HEADS="cfc_ncp" bash scripts/ship_models.sh    # one head
# Then evaluate them: bash scripts/evaluate_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LIQUID_NAV=${LIQUID_NAV:-.venv/bin/liquid-nav}
DATA=${DATA:-data/forest}
RUNS=${RUNS:-runs/shipped}
HEADS=${HEADS:-cfc_ncp lstm ltc_ncp}

# 150 expert episodes, seeds 0-149, deterministic whatever the number of workers (~3.5 min on 2 cores)
"$LIQUID_NAV" collect --world forest --episodes 150 --workers 2 --out "$DATA"
mkdir -p "$RUNS" checkpoints
"$LIQUID_NAV" dataset info "$DATA" > checkpoints/data_summary.txt

for head in $HEADS; do
  run="$RUNS/$head"
  resume=()
  [[ -f "$run/checkpoints/last/state.pt" ]] && resume=(--resume)
  "$LIQUID_NAV" train --config quick --head "$head" --data "$DATA" --out "$run" "${resume[@]}"
  mkdir -p "checkpoints/$head"
  cp "$run/checkpoints/last/policy.lnav" "checkpoints/$head/policy.lnav"
  cp "$run/config.yaml" "checkpoints/$head/train_config.yaml"
  cp "$run/log.csv" "checkpoints/$head/log.csv"
  "$LIQUID_NAV" export "checkpoints/$head/policy.lnav" "checkpoints/$head/policy.onnx" --check --force
done
curves=()
for head in $HEADS; do curves+=("$head=$RUNS/$head"); done
"$LIQUID_NAV" curves "${curves[@]}" --out checkpoints/training_curves.png \
  --title "shipped models: quick recipe, forest data (150 expert episodes)"
