# ruff: noqa  (measurement scripts for the report, not part of the package)
"""Does the refusal's advice work? For each bank pattern the fixed check refuses as polynomial,
apply the advice mechanically (a lookbehind that rejects the first repetition's characters,
`(?<!X)` for a leading class X, or `\\b` for a leading literal), then ask: does the check accept
the guarded pattern, is it fast (measure.py's adversarial texts, subprocess), and does it find
the same matches as the original on ordinary chat texts (a property test over sample texts)?

Usage: python repro/advice.py repro/bank.txt > repro/advice.jsonl
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

sys.path.insert(0, "/work/p19/regexfp")
from auditor.policies import backtracking  # noqa: E402

LEAD = re.compile(r"^(\(\?[aiLmsux]+\))?(\((?:\?:)?)?(\[(?:\\.|[^\]])*\]|\\[dwsDWS]|\.)?")

WORDS = [
    "保本",
    "保证收益",
    "年化",
    "12.5%",
    "3000元",
    "1,200,000元",
    "5万元",
    "¥88.00",
    "$1,234.56",
    "13812345678",
    "+86 138-1234-5678",
    "010-12345678",
    "110101199003074514",
    "a.b@example.com",
    "x_y+z@mail.qq.com",
    "https://example.com/a?b=c",
    "www.example.cn",
    "192.168.1.1",
    "password=abc123",
    "密码：hunter2",
    "guaranteed returns",
    "guaranteed 12%",
    "risk-free return",
    "insider tip",
    "微信: abc_12345",
    "QQ 123456789",
    "加v: wx1234",
    "转账",
    "汇款到账户",
    "卡号 6222021234567890123",
    "the",
    "and",
    "客户",
    "资料",
    "发给我",
    "明天",
    "收益",
    "回报",
    "承诺",
    "内幕消息",
    "x",
    "y",
    "a",
    "b",
    "key = value;",
    "user: admin",
    "\n",
    " ",
    "  ",
    ",",
    ".",
    "。",
    "，",
    "!",
    "？",
    "2026-11-27",
    "10:30",
]


def guarded(source: str) -> str | None:
    match = LEAD.match(source)
    flags, group, atom = match.group(1) or "", match.group(2) or "", match.group(3)
    rest = source[len(flags) :]
    if atom:
        return f"{flags}(?<!{atom}){rest}"
    return f"{flags}\\b{rest}"


def texts(count: int = 400) -> list[str]:
    rng = random.Random(19)
    return [
        "".join(
            rng.choice(WORDS) + rng.choice(["", " ", "，", "\n"]) for _ in range(rng.randint(1, 12))
        )
        for _ in range(count)
    ]


def main() -> None:
    rows = [
        {"pattern": line.rstrip("\n")}
        for line in open(sys.argv[1], encoding="utf-8")
        if line.strip() and not line.startswith("# ")
    ]
    sample = texts()
    done = set()
    if len(sys.argv) > 2:
        done = {json.loads(line)["pattern"] for line in open(sys.argv[2], encoding="utf-8")}
    for row in rows:
        source = row["pattern"]
        if source in done:
            continue
        said = backtracking.polynomial_backtracking(re.compile(source))
        if (
            not said
            or backtracking.nested_repetition(re.compile(source))
            or backtracking.ambiguous_repetition(re.compile(source))
        ):
            continue
        fixed = guarded(source)
        regex = re.compile(fixed)
        verdicts = [
            c(regex)
            for c in (
                backtracking.nested_repetition,
                backtracking.ambiguous_repetition,
                backtracking.polynomial_backtracking,
            )
        ]
        accepted = not any(verdicts)
        try:
            timing = subprocess.run(
                [sys.executable, "/work/p19/regexfp/repro/measure.py", "--one", fixed],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            timing = json.loads(timing) if timing else {"slow": None}
        except subprocess.TimeoutExpired:
            timing = {"slow": True, "t10k": "timeout 30 s"}
        original = re.compile(source)
        differ = [
            t
            for t in sample
            if [m.group() for m in original.finditer(t)] != [m.group() for m in regex.finditer(t)]
        ]
        print(
            json.dumps(
                {
                    "pattern": source,
                    "guarded": fixed,
                    "accepted": accepted,
                    "why": next((v for v in verdicts if v), None),
                    "slow": timing.get("slow"),
                    "t10k": timing.get("t10k"),
                    "t40k": timing.get("t40k"),
                    "texts": len(sample),
                    "differ": len(differ),
                    "example": differ[0][:80] if differ else None,
                },
                ensure_ascii=False,
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
