"""What reading a policy leaves in memory is paid by the coordinator and again by every worker:
the example policy's tables (normalisation, automata, patterns) stay about a megabyte.

Session 19 cached `is_separator` per character while the `separators` table was built over the
whole Basic Multilingual Plane, so the cache kept 65,536 strings and their entries: 10 MB more in
every process of a run (the end-to-end peak went 96 -> 110 MB). Measured in a fresh interpreter,
since the tables are built once per process.
"""

import subprocess
import sys

from auditor.policies.normalize import is_hard_separator, is_separator, is_soft_separator

RETAINED = """
import gc, tracemalloc
import auditor.pipeline
from auditor.policies.loading import load_policy
from auditor.resources import example_policy
tracemalloc.start()
policy = load_policy(example_policy())
gc.collect()
print(tracemalloc.get_traced_memory()[0])
"""


def test_loading_the_example_policy_keeps_under_4_mib() -> None:
    run = subprocess.run([sys.executable, "-c", RETAINED], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) < 4 * 2**20


def test_is_separator_is_the_step_over_every_character() -> None:
    for code in [*range(0xD800), *range(0xE000, 0x10000), 0x1F600, 0xE0020, 0x10FFFF]:
        char = chr(code)
        assert is_separator(char) == (is_hard_separator(char) or is_soft_separator(char)), code
