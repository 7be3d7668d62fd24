"""Benchmark: instructions a record of `PolicyEngine.evaluate` under callgrind.

    .venv/bin/python bench/bench_policy_instructions.py [--records 50000] [--python OTHER]

`bench_policies.py` times the engine, and on this shared machine its rate moves with the load;
callgrind's count does not. This counts what one of its passes does: `bench_policies`' policy
(the example's, padded to 1,000 terms) over its synthetic records, a fresh engine with an empty
memo, after another engine has warmed the process's caches on the first 500 records. The
records are built and written as JSON lines before callgrind starts, and parsed with orjson
before the count, as a worker parses an hour file (`jsonl.parse_buffer`): the engine looks keys
up with the objects orjson's key cache gives (`reading`), which unpickled records do not hold.
The counted part lies between two calls of `os.getppid()` (callgrind's `--dump-before=getppid`,
as in `bench_instructions.py`).
`--python` counts another checkout's venv on the same records. Under callgrind 50,000 records
take about five minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WARMING = 500


def inner(path: str) -> None:
    """What runs under callgrind: warm, mark, evaluate every record, mark."""
    import gc

    sys.path.insert(0, str(BENCH))
    import orjson
    from bench_policies import NOW_MS, padded_policy

    from auditor.policies.engine import PolicyEngine

    records = [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]
    policy = padded_policy(1_000)
    warming = PolicyEngine(policy, NOW_MS).evaluate
    for record in records[:WARMING]:
        warming(record)
    evaluate = PolicyEngine(policy, NOW_MS).evaluate
    gc.collect()
    gc.freeze()
    os.getppid()
    for record in records:
        evaluate(record)
    os.getppid()


def counted(python: str, path: Path, out: Path) -> int:
    """The instructions of the counted part, from callgrind's second dump."""
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/policies.%p.out",
            "--dump-before=getppid",
            python,
            __file__,
            "--inner",
            str(path),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    (part,) = out.glob("policies.*.out.2")
    for line in part.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{part}: no total")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--python", default=sys.executable, help="another checkout's venv python")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        inner(args.inner)
        return {}
    if shutil.which("valgrind") is None:
        sys.exit("bench_policy_instructions: valgrind (callgrind) is not installed")
    import orjson

    from auditor.emulator.dataset import SyntheticHistory

    with tempfile.TemporaryDirectory(prefix="bench-policy-icount-") as folder:
        path = Path(folder) / "records.jsonl"
        lines = (orjson.dumps(record) for record in SyntheticHistory(messages=args.records))
        path.write_bytes(b"\n".join(lines))
        total = counted(args.python, path, Path(folder))
    per_record = total / args.records
    print(f"evaluate: {per_record:,.0f} instructions a record ({args.records:,} records)")
    return {"evaluate": per_record}


if __name__ == "__main__":
    main()
