#!/bin/sh
# `auditor run --api legacy` end to end against an emulator whose legacy pages lie
# (--legacy-hostile SPEC, default drop=1): prints the run's stderr tail and exit code.
# Usage: repro/legacy_cli_hostile.sh [SPEC] [extra emulator flags...]
set -u
cd "$(dirname "$0")/.."
SPEC=${1:-drop=1}; [ $# -gt 0 ] && shift
D=$(mktemp -d /tmp/legacy19-cli-XXXXXX)
export EASEMOB_CLIENT_SECRET=demo-secret
.venv/bin/auditor keygen --out "$D/keys" >/dev/null
.venv/bin/auditor emulator --port 0 --messages "${MESSAGES:-24000}" --ready-file "$D/ready" \
  --legacy-hostile "$SPEC" "$@" >/dev/null 2>"$D/emu.err" &
EMU=$!
while [ ! -s "$D/ready" ]; do sleep 0.2; done
printf 'source:\n  api: legacy\n  backoff_base: 0.01\n  backoff_cap: 0.05\n  max_retries: 3\n' >"$D/a.yaml"
.venv/bin/auditor ${GLOBALFLAGS:-} run --config "$D/a.yaml" --base-url "$(cat "$D/ready")" --org demo-org \
  --app demo-app --client-id demo-client --policies policies.example.yaml \
  --key "$D/keys/auditor-signing-key.pem" --out "$D/archive" --state "$D/state.db" \
  --since 2026-11-01T00:00Z --until 2026-11-01T03:00Z --as-of 2026-11-01T03:00Z \
  --fail-on none ${RUNFLAGS:-} >"$D/out" 2>"$D/err"
echo "cursor resumes: $(grep -c "cursor refused" "$D/err")"
echo "exit $?"; tail -3 "$D/err"
kill "$EMU"; wait "$EMU" 2>/dev/null; rm -rf "$D"
