#!/bin/bash
# A state made by 4cb10e2 (before the index kept action/rule/seq), read by `state show` and
# `due`, then rebuilt: held messages of the old state show as "no-retention", the rest "expired";
# a rebuild from the bags fills action/rule/seq. Needs /tmp/p23/{hours,keys,chain} (chain_build.sh).
set -e
cd /tmp/p23; P=/work/p19/probe23/.venv/bin/auditor
git -C /work/p19/probe23 worktree add -q /tmp/p23/old 4cb10e2 2>/dev/null || true
rm -rf oldchain oldre.db
PYTHONPATH=/tmp/p23/old /work/p19/probe23/.venv/bin/python -m auditor run --quiet --fail-on none \
  --key keys/auditor-signing-key.pem --out oldchain/archive --state oldchain/state.db \
  --policies chain/B.yaml --from hours --since 2026-11-01T00:00Z --until 2026-11-01T06:00Z 2>/dev/null
$P state show --state oldchain/state.db
$P due --state oldchain/state.db --on 2032-01-01 | head -4
$P state rebuild --out oldchain/archive --state oldre.db --pubkey keys/auditor-signing-key.pub.pem
$P due --state oldre.db --on 2032-01-01 | head -5
