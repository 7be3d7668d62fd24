# ruff: noqa  (measurement scripts for the report, not part of the package)
"""Policy load time before and after the fix: the example policy and a 200-pattern policy of
bank patterns both versions accept, loaded in-process with each version's checks swapped into
the loader, alternated, 7 rounds; the median per version is printed (also the check's share).

Usage: .venv/bin/python repro/loadtime.py
"""

from __future__ import annotations

import importlib.util
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, "/work/p19/regexfp")
from auditor.policies import loading  # noqa: E402

ROOT = Path("/work/p19/regexfp")
NAMES = ("nested_repetition", "ambiguous_repetition", "polynomial_backtracking")


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


VERSIONS = {
    "before": load(str(ROOT / "repro/backtracking_before.py"), "bt_before"),
    "after": load(str(ROOT / "auditor/policies/backtracking.py"), "bt_after"),
}


def accepted(source: str) -> bool:
    regex = re.compile(source)
    if regex.search(""):
        return False
    return all(not getattr(m, n)(regex) for m in VERSIONS.values() for n in NAMES)


def big_policy() -> Path:
    bank = [
        line.rstrip("\n")
        for line in open(ROOT / "repro/bank.txt", encoding="utf-8")
        if line.strip() and not line.startswith("# ")
    ]
    keep = [s for s in bank if accepted(s)]
    patterns = (keep * (200 // len(keep) + 1))[:200]
    body = "version: 1\nkeywords:\n  - id: a\n    severity: high\n    patterns:\n"
    body += "".join(
        f"      - '{p.replace(chr(39), chr(39) * 2)}(?#{i})'\n" for i, p in enumerate(patterns)
    )
    path = ROOT / "repro/policy200.yaml"
    path.write_text(body, encoding="utf-8")
    print(f"policy200: {len(patterns)} patterns ({len(set(keep))} distinct bank patterns)")
    return path


def main() -> None:
    files = {"example": ROOT / "policies.example.yaml", "policy200": big_policy()}
    for label, path in files.items():
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(7):
            for version, module in VERSIONS.items():
                for name in NAMES:
                    setattr(loading, name, getattr(module, name))
                started = time.perf_counter()
                loading.load_policy(path)
                times[version].append(time.perf_counter() - started)
        print(
            label,
            {
                v: f"{statistics.median(t) * 1000:.0f} ms (min {min(t) * 1000:.0f})"
                for v, t in times.items()
            },
        )


if __name__ == "__main__":
    main()
