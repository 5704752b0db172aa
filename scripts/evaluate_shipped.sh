#!/usr/bin/env bash
# Evaluate the shipped models as the targets of docs/results/shipped ask: 200 held-out seeds per world, the
# stress conditions in the forest and the city, every model on the same seeds (paired). Resumes when re-run.
#   bash scripts/evaluate_shipped.sh                  # the full size (hours on 2 CPU cores)
#   EPISODES=50 STRESS_EPISODES=10 bash scripts/evaluate_shipped.sh   # what docs/results/shipped ran
set -euo pipefail
cd "$(dirname "$0")/.."
LIQUID_NAV=${LIQUID_NAV:-.venv/bin/liquid-nav}
OUT=${OUT:-out/shipped}
WORKERS=${WORKERS:-2}
"$LIQUID_NAV" evaluate --experiment shipped --episodes "${EPISODES:-200}" --workers "$WORKERS" --out "$OUT/worlds"
"$LIQUID_NAV" evaluate --experiment shipped_stress --episodes "${STRESS_EPISODES:-200}" --workers "$WORKERS" \
  --out "$OUT/stress"
