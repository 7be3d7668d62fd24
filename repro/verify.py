# ruff: noqa  (measurement scripts for the report, not part of the package)
"""Direct timings for the cells where measure.py's generated texts disagreed with the check:
hand-built adversarial texts (the check's own run, with the prefix or the ending it needs).

Usage: python repro/verify.py   (plain re, no flags beyond the pattern's own; search+finditer)
"""

import re
import time

CASES = [
    # pattern, text builder (n -> text), sizes
    (
        r"(?i)(account|acct)\s*(no|number|#)?\.?\s*[:#]?\s*\d{6,}",
        lambda n: "account" + " " * n + "!",
        (250, 500, 1000),
    ),
    (
        r"(?i)passport\s*(no\.?|number|#)?\s*[:：]?\s*[A-Z0-9]{6,9}",
        lambda n: "passport" + " " * n + "!",
        (250, 500, 1000),
    ),
    (r"(?i)\bwire\b.*\bcayman\b", lambda n: ("wire " * n)[:n], (10_000, 40_000)),
    (r"(?i)\bmove\b.*\boffshore\b", lambda n: ("move " * n)[:n], (10_000, 40_000)),
    (r"www\.\S+\.com", lambda n: ("www.0" * n)[:n], (10_000, 40_000)),
    (r".*保证收益.*", lambda n: "0" * n + "\n保证收益", (10_000, 40_000)),
    (r"^.*内幕.*$", lambda n: ("内幕0" * n)[:n] + "\nx", (10_000, 40_000)),
    (r"(?i)^.*(insider).*$", lambda n: ("insider0" * n)[:n] + "\nx", (10_000, 40_000)),
    (r"(?i)risk.free.*return", lambda n: ("risk0free0" * n)[:n], (10_000, 40_000)),
    (r"(?i)guaranteed.+profit", lambda n: ("guaranteed0" * n)[:n], (10_000, 40_000)),
    (r"[一二三四五六七八九十百千万亿]+元", lambda n: "元" + "一" * n, (10_000, 40_000)),
    (r"\b(?:\d[ -]*?){13,16}\b", lambda n: "1" + " " * n, (10_000, 40_000)),
    (r"\$\s?\d+(,\d{3})*(\.\d{2})?", lambda n: "$1" + (",111" * n)[:n], (10_000, 40_000)),
    (
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
        lambda n: "@" + ("-1" * n)[:n],
        (10_000, 40_000),
    ),
    (r"(?m)^\s*密码\s*[:：].*$", lambda n: "密码" + "\n" * n + "x", (10_000, 40_000)),
    (r"\w+\d+", lambda n: "a" * n, (10_000, 40_000)),
    (r"(\d+){3}x", lambda n: "1" * n, (100, 200)),
]

for pattern, build, sizes in CASES:
    regex = re.compile(pattern)
    cells = []
    for n in sizes:
        text = build(n)
        started = time.perf_counter()
        if regex.search(text):
            for _ in regex.finditer(text):
                pass
        cells.append(f"{len(text)}: {time.perf_counter() - started:.3f} s")
    print(f"{pattern!r:70} " + ", ".join(cells), flush=True)
