# ruff: noqa  (measurement scripts for the report, not part of the package)
"""Ground truth for the slow-regex check: the worst search time of each bank pattern on
adversarial texts built from the pattern's own atoms, beside the loader's verdict.

Usage: python repro/measure.py repro/bank.txt [out.jsonl]   (one subprocess per pattern, so an
exponential pattern is killed at the timeout and counted slow).

Texts, as keywords.py applies a rule: `re.compile(source)` with no flags, on the raw text, run
only when the text holds the rule's required literal (its gate), `search` and then `finditer`.
Each candidate is prefix + unit * k + suffix cut to N characters, where a unit is a character
each leaf of the pattern accepts, two consecutive leaves' characters, or a literal run of the
pattern; the prefix is the gate literal (or nothing), the suffix nothing, NUL or '!'. The worst
candidate at 10,000 characters is timed again at 40,000: slow means over 1 s there.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from re import _parser  # type: ignore[attr-defined]

sys.path.insert(0, "/work/p19/regexfp")

SAMPLES = "a1A中 .-_@x:/=%,;\t\né!#Z9"
SLOW = 1.0
SUFFIXES = ("", "\x00", "\nx")  # '\nx': a `$` or `.` that must fail at the end


def leaves(items, out, runs, run):
    for op, value in items:
        name = str(op)
        if name == "LITERAL":
            out.append([chr(value)])
            run.append(chr(value))
            continue
        if run:
            runs.append("".join(run))
            run.clear()
        if name in ("IN", "ANY", "NOT_LITERAL"):
            out.append((name, value))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            leaves(value[2].data, out, runs, [])
        elif name == "SUBPATTERN":
            leaves(value[-1].data, out, runs, [])
        elif name == "ATOMIC_GROUP":
            leaves(value.data, out, runs, [])
        elif name == "BRANCH":
            for branch in value[1]:
                leaves(branch.data, out, runs, [])
        elif name in ("ASSERT", "ASSERT_NOT"):
            leaves(value[1].data, out, runs, [])
    if run:
        runs.append("".join(run))
        run.clear()


def candidates(source: str, regex: re.Pattern[str]) -> list[str]:
    from auditor.policies.keywords import required_literal

    parsed = _parser.parse(source, regex.flags)
    out, runs = [], []
    leaves(parsed.data, out, runs, [])
    extra = "".join(c for r in runs for c in r) + "".join(dict.fromkeys(source))
    reps: list[list[str]] = []
    for leaf in out:
        if isinstance(leaf, list):
            reps.append(leaf)
        else:
            reps.append(class_chars(source, leaf, regex.flags, extra))
    units: set[str] = set(runs)
    bodies: list[str] = []
    whole = sample(parsed.data, regex.flags, extra, bodies)
    units.update(u for u in bodies + [whole] if u)
    for rep in reps:  # two characters of one leaf: a word and a non-word one, as in 'a.'
        units.update(x + y for x in rep for y in rep if x != y)
    for rep in reps:
        units.update(rep)
    for a, b in zip(reps, reps[1:]):
        for x in a:
            for y in b:
                units.add(x + y)
    for r in runs:
        for rep in reps:
            for x in rep[:1]:
                units.add(r + x)
    gate = required_literal(regex)
    prefixes = [gate + "\x00"] if gate else [""]
    # a literal run of the pattern, then the run: 'passport' + spaces for passport\s*...\s*
    prefixes += [(gate + "\x00" if gate else "") + r for r in runs[:4]]
    texts = []
    for unit in sorted(units):
        if not unit:
            continue  # noqa
        for prefix in prefixes:
            for suffix in SUFFIXES:
                texts.append((prefix, unit, suffix))
    return texts


def sample(items, flags, extra, bodies):
    """A short text the items match (a loop's body read its least number of times, at least
    once), collecting the sample of each repetition's body in `bodies`."""
    text = ""
    for op, value in items:
        name = str(op)
        if name == "LITERAL":
            text += chr(value)
        elif name in ("IN", "ANY", "NOT_LITERAL"):
            chars = class_chars("", (name, value), flags, extra)
            text += chars[0] if chars else ""
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            body = sample(value[2].data, flags, extra, bodies)
            bodies.append(body)
            text += body * min(max(value[0], 1), 20)
        elif name == "SUBPATTERN":
            text += sample(value[-1].data, flags, extra, bodies)
        elif name == "ATOMIC_GROUP":
            text += sample(value.data, flags, extra, bodies)
        elif name == "BRANCH":
            options = [sample(b.data, flags, extra, bodies) for b in value[1]]
            bodies.extend(options)
            text += options[0]
    return text


def class_chars(source, leaf, flags, extra):
    """Characters the leaf accepts, tested by compiling a one-leaf pattern from the parse."""
    from re import _compiler  # type: ignore[attr-defined]

    name, value = leaf
    state = _parser.State()
    state.flags = flags
    sub = _parser.SubPattern(state, [(getattr(_parser, name), value)])
    code = _compiler._code(sub, flags)
    compiled = _sre_compile(source, flags, code, state)
    pool = dict.fromkeys(SAMPLES + extra)
    accepted = [c for c in pool if compiled(c)]
    word = [c for c in accepted if c.isalnum() or c == "_"]
    other = [c for c in accepted if not (c.isalnum() or c == "_")]
    return word[:2] + other[:2]


def _sre_compile(source, flags, code, state):
    import _sre

    regex = _sre.compile(source, flags | state.flags, code, 0, {}, (None,))
    return lambda c: regex.fullmatch(c) is not None


def build(prefix, unit, suffix, n):
    body = (unit * (n // len(unit) + 1))[: n - len(prefix) - len(suffix)]
    return prefix + body + suffix


def cost(regex, text):
    start = time.perf_counter()
    if regex.search(text) is not None:
        for _ in regex.finditer(text):
            pass
    return time.perf_counter() - start


def verdict(regex, where=None):
    import importlib.util

    where = where or "/work/p19/regexfp/repro/backtracking_before.py"
    name = "bt_" + str(abs(hash(where)))
    spec = importlib.util.spec_from_file_location(name, where)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    ambiguous_repetition = module.ambiguous_repetition
    nested_repetition = module.nested_repetition
    polynomial_backtracking = module.polynomial_backtracking

    for name, check in (
        ("nested", nested_repetition),
        ("ambiguous", ambiguous_repetition),
        ("polynomial", polynomial_backtracking),
    ):
        said = check(regex)
        if said:
            return name, said
    return None, None


def one(source: str) -> dict:
    regex = re.compile(source)
    name, said = verdict(regex)  # the verdict of the code before the fix: see table.py
    if regex.search(""):
        name, said = "empty", "matches the empty string"
    worst = []
    extra_units = set()
    for module_path in (None, "/work/p19/regexfp/auditor/policies/backtracking.py"):
        said_here = verdict(regex, module_path)[1] or ""
        found = re.search(r"run like ('.*?'|\".*?\") again", said_here)
        if found:
            run = ast.literal_eval(found.group(1))[:-3]
            unit = next(
                run[:k] for k in range(1, len(run) + 1) if (run[:k] * len(run))[: len(run)] == run
            )
            extra_units.update({unit, unit.lower()})
    from auditor.policies.keywords import required_literal

    gate = required_literal(regex)
    witness = [(gate + "\x00" if gate else "", u, s) for u in extra_units for s in SUFFIXES]
    import random

    others = candidates(source, regex)
    random.Random(19).shuffle(others)
    for prefix, unit, suffix in (witness + others)[:300]:
        t = cost(regex, build(prefix, unit, suffix, 2_000))
        worst.append((t, prefix, unit, suffix))
        if t > 0.1:  # quadratic or worse for sure: 10,000 will take over 2 s
            break
    worst.sort(reverse=True)
    result = {
        "pattern": source,
        "refused": name,
        "why": said,
        "candidates": len(worst),
        "t2k": round(worst[0][0], 4) if worst else 0,
    }
    top = []
    for _t, p, u, s in worst[:1]:
        top.append((cost(regex, build(p, u, s, 10_000)), p, u, s))
    top.sort(reverse=True)
    best = top[0] if top else (0, "", "", "")
    result["t10k"] = round(best[0], 4)
    result["text"] = [best[1], best[2], best[3]]
    if best[0] > SLOW:
        result["t40k"] = None  # already over 1 s at 10k: 40k cannot be faster
        result["slow"] = True
    else:
        t40 = cost(regex, build(best[1], best[2], best[3], 40_000))
        result["t40k"] = round(t40, 4)
        result["slow"] = t40 > SLOW
    return result


def main() -> None:
    if sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2]), ensure_ascii=False))
        return
    bank = [
        line.rstrip("\n")
        for line in open(sys.argv[1], encoding="utf-8")
        if line.strip() and not line.startswith("# ")
    ]
    if len(sys.argv) > 3:  # shard k/n
        k, n = map(int, sys.argv[3].split("/"))
        bank = bank[k::n]
    done_already = set()
    if len(sys.argv) > 2:
        import glob
        import os

        for name in glob.glob(os.path.join(os.path.dirname(sys.argv[2]), "*.jsonl")):
            for line in open(name, encoding="utf-8"):
                done_already.add(json.loads(line)["pattern"])
    bank = [source for source in bank if source not in done_already]
    out = open(sys.argv[2] if len(sys.argv) > 2 else "/dev/stdout", "a", encoding="utf-8")
    for source in bank:
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--one", source],
                capture_output=True,
                text=True,
                timeout=60,
            )
            line = done.stdout.strip() or json.dumps(
                {"pattern": source, "error": done.stderr.strip()[-300:]}, ensure_ascii=False
            )
        except subprocess.TimeoutExpired:
            name, said = verdict(re.compile(source))
            line = json.dumps(
                {"pattern": source, "refused": name, "why": said, "slow": True, "timeout": True},
                ensure_ascii=False,
            )
        print(line, file=out, flush=True)


if __name__ == "__main__":
    main()
