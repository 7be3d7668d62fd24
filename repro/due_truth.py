"""Ground truth for `auditor due`: every message of every bag judged at ON by (a) the policy file
the bag's own run applied (data/policy.yaml) with the holds active at ON, and (b) the newest
run's policy, then compared with `auditor due --on ON --format json` message by message.

usage: .venv/bin/python repro/due_truth.py OUT_DIR STATE ON...
Prints, per ON: due's counts, the truth's counts, and every disagreement by kind."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from auditor.partitions import parse_instant
from auditor.policies.loading import load_policy
from auditor.policies.reading import glance
from auditor.policies.retention import RetentionDecider

out, state, ons = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
bags = sorted(p for p in out.iterdir() if p.name.startswith("run-") and p.is_dir())
newest = load_policy(bags[-1] / "data/policy.yaml")


def records(bag):
    for path in sorted((bag / "data/records").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            value = json.loads(line)
            yield value["seq"], value["record"]


def truth(decider, facts, on):
    until, verdict = decider.decide_facts(facts)
    if verdict.disposition == "hold":
        return "hold"
    if until is None:
        return "no-retention"
    if until > on:
        return "kept"
    return {"dispose": "delete"}.get(verdict.disposition, verdict.disposition)


for on_text in ons:
    on = parse_instant(on_text)
    shown = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "auditor",
                "due",
                "--state",
                state,
                "--on",
                on_text,
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    listed = Counter(m["msg_id"] for m in shown["messages"])
    by_key = {(m["msg_id"], m["bag"]): m["verdict"] for m in shown["messages"]}
    own_counts, new_counts, diffs = Counter(), Counter(), Counter()
    examples = {}
    seen = Counter()
    for bag in bags:
        own = RetentionDecider(load_policy(bag / "data/policy.yaml"), on)
        new = RetentionDecider(newest, on)
        for _seq, record in records(bag):
            mid = record.get("msg_id")
            if not mid:
                continue
            seen[mid] += 1
            facts, _ = glance(record)
            a, b = truth(own, facts, on), truth(new, facts, on)
            own_counts[a] += 1
            new_counts[b] += 1
            got = by_key.get((mid, bag.name), "kept/keep(not listed)")
            for name, want in (("own-policy", a), ("newest-policy", b)):
                if want in ("kept", "keep"):
                    want = "kept/keep(not listed)"
                if got != want:
                    diffs[(name, want, got)] += 1
                    examples.setdefault((name, want, got), (mid, bag.name))
    print(f"== on {on_text}: due counts {shown['counts']}")
    print(f"   truth (own policy)    {dict(own_counts)}")
    print(f"   truth (newest policy) {dict(new_counts)}")
    print(
        f"   msg_ids listed more than once by due: {sum(1 for c in listed.values() if c > 1)}; "
        f"archived more than once: {sum(1 for c in seen.values() if c > 1)}"
    )
    for (name, want, got), n in sorted(diffs.items()):
        print(f"   {name}: truth {want}, due {got}: {n} (e.g. {examples[(name, want, got)]})")
