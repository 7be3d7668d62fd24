# ruff: noqa  (measurement scripts for the report, not part of the package)
"""Confusion tables of the slow-regex check before and after the fix against measured times.

Usage: python repro/table.py repro/times   (reads the *.jsonl that measure.py wrote there).
Verdicts are recomputed here: `before` is the base commit's backtracking.py (a copy in repro/),
`after` the working tree's; each one's analysis time per pattern is measured too.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import sys
import time


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def verdict(module, regex):
    for check in ("nested_repetition", "ambiguous_repetition", "polynomial_backtracking"):
        said = getattr(module, check)(regex)
        if said:
            return check, said
    return None, None


def main() -> None:
    rows = [json.loads(line) for name in glob.glob(sys.argv[1] + "/*.jsonl") for line in open(name)]
    # verify.out (hand-built texts) overrides the generated texts' verdict where it has one:
    # slow when its largest text took over 1 s
    import ast
    import os

    verified = {}
    if os.path.exists("/work/p19/regexfp/repro/verify.out"):
        for line in open("/work/p19/regexfp/repro/verify.out", encoding="utf-8"):
            quoted, cells = line.rsplit("  ", 1) if "  " in line else (None, None)
            if quoted is None:
                continue
            pattern = ast.literal_eval(quoted.strip())
            verified[pattern] = float(cells.split(",")[-1].split(":")[1].split()[0]) > 1.0
    for row in rows:
        if row.get("pattern") in verified:
            row["verified"] = verified[row["pattern"]]
            if row.get("slow") != row["verified"]:
                row["overridden"] = True
            row["slow"] = row["verified"]
    versions = {
        "before": load("/work/p19/regexfp/repro/backtracking_before.py", "bt_before"),
        "after": load("/work/p19/regexfp/auditor/policies/backtracking.py", "bt_after"),
    }
    for label, module in versions.items():
        table = {(r, s): [] for r in (True, False) for s in (True, False)}
        costs = []
        for row in rows:
            if "error" in row:
                print("error", row["pattern"], row["error"][-100:])
                continue
            regex = re.compile(row["pattern"])
            started = time.perf_counter()
            check, said = verdict(module, regex)
            costs.append((time.perf_counter() - started, row["pattern"]))
            table[(check is not None, row["slow"])].append((row, check, said))
        print(
            f"  rows set by verify.py against the generated texts: "
            f"{sum(1 for r in rows if r.get('overridden'))}"
        ) if label == "before" else None
        costs.sort(reverse=True)
        total = sum(c for c, _ in costs)
        print(
            f"== {label}: {len(costs)} patterns, analysis {total * 1000:.0f} ms in all, "
            f"worst {costs[0][0] * 1000:.1f} ms ({costs[0][1]!r})"
        )
        for (refused, slow), found in table.items():
            name = {
                (True, True): "refused&slow",
                (True, False): "refused&fast (FALSE REFUSAL)",
                (False, True): "accepted&slow (MISS)",
                (False, False): "accepted&fast",
            }
            print(f"  {name[(refused, slow)]}: {len(found)}")
            if refused != slow:
                for row, check, said in found:
                    print(
                        f"     {row['pattern']!r} t10k={row.get('t10k')} t40k={row.get('t40k')}"
                        f"{' (verify.py)' if 'verified' in row else ''}"
                        f" text={row.get('text')} {check or ''} {said or ''}"
                    )


if __name__ == "__main__":
    main()
