#!/bin/bash
# Builds a 4-run chain from local hour files in $W (default /tmp/p23/chain):
#   run 1: hours 00-06, policy A (no holds)
#   run 2: hours 06-12, policy B (the example policy: open hold matter-2026-017 on user0007/user0042)
#   run 3: hours 12-18, policy C (B + hold "ends-soon" on user0092 ending 2027-02-01,
#          + hold "later" on user0097 starting 2027-06-01: both in the policy when run 3 ran)
#   run 4: hours 00-06 again, policy C, one message of hour 03 edited (same msg_id)
# Needs: HOURS (a folder `auditor pull` wrote), KEYS (auditor keygen --out).
set -e
P=${P:-/work/p19/probe23/.venv/bin/auditor}
HOURS=${HOURS:-/tmp/p23/hours}; KEYS=${KEYS:-/tmp/p23/keys}; W=${W:-/tmp/p23/chain}
EX=/work/p19/probe23/policies.example.yaml
rm -rf "$W"; mkdir -p "$W"
python3 - "$EX" "$W" <<'PY'
import sys, re
ex, w = sys.argv[1], sys.argv[2]
text = open(ex).read()
a = text[: text.index("\nholds:")] + "\n" + text[text.index("\n# Keyword lists"):]
open(f"{w}/A.yaml", "w").write(a)
open(f"{w}/B.yaml", "w").write(text)
c = text.replace("    starts: 2026-10-15\n", """    starts: 2026-10-15
  - id: ends-soon
    reason: short matter
    scope:
      participant: [user0092]
    starts: 2026-10-01
    ends: 2027-02-01
  - id: later
    reason: a matter whose preservation starts later
    scope:
      participant: [user0097]
    starts: 2027-06-01
""", 1)
open(f"{w}/C.yaml", "w").write(c)
PY
run() { "$P" run --quiet --fail-on none --key "$KEYS/auditor-signing-key.pem" --out "$W/archive" --state "$W/state.db" "$@"; }
run --from "$HOURS" --since 2026-11-01T00:00Z --until 2026-11-01T06:00Z --policies "$W/A.yaml"
run --from "$HOURS" --since 2026-11-01T06:00Z --until 2026-11-01T12:00Z --policies "$W/B.yaml"
run --from "$HOURS" --since 2026-11-01T12:00Z --until 2026-11-01T18:00Z --policies "$W/C.yaml"
mkdir -p "$W/edited"; cp "$HOURS"/2026110103.jsonl "$W/edited/"
python3 - "$W/edited/2026110103.jsonl" <<'PY'
import sys, json
p = sys.argv[1]; lines = open(p).read().splitlines()
for i, l in enumerate(lines):
    r = json.loads(l)
    b = r["payload"]["bodies"][0]
    if b.get("type") == "txt":
        b["msg"] += " (edited)"; lines[i] = json.dumps(r, ensure_ascii=False); print("edited", r["msg_id"]); break
open(p, "w").write("\n".join(lines) + "\n")
PY
run --from "$W/edited" --since 2026-11-01T03:00Z --until 2026-11-01T04:00Z --policies "$W/C.yaml"
"$P" state show --state "$W/state.db"
