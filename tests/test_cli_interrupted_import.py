"""A Ctrl-C while a command imports orjson stops it as anywhere else (exit 130, one line), not
with a segmentation fault: orjson's module init crashes when one of the standard modules it
imports fails to import, as a KeyboardInterrupt raised meanwhile makes it fail (ijl/orjson#310;
probe30: 2 of 24 Ctrl-Cs in the first second of `auditor verify-chain` dumped core, exit 139).

The Ctrl-C is sent from an import hook at the moment orjson imports `json`, so the test does not
depend on timing."""

from __future__ import annotations

import signal
import subprocess
import sys

from test_archive_support import build_bag, make_keys

INTERRUPTED_WHILE_ORJSON_LOADS = """
import os, signal, sys

class CtrlC:
    sent = False

    def find_spec(self, name, path=None, target=None):
        if name == "json" and "orjson" in sys.modules and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
from auditor.cli import main
main(sys.argv[1:], prog_name="auditor")
"""


def test_a_ctrl_c_while_orjson_loads_is_an_interrupt_not_a_crash(tmp_path):
    keys = make_keys(tmp_path / "keys")
    build_bag(tmp_path / "runs", keys[1], messages=24)
    command = ["verify-chain", str(tmp_path / "runs"), "--pubkey", str(keys[0].public_key)]

    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_ORJSON_LOADS, *command],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != -signal.SIGSEGV
    assert (done.returncode, done.stderr) == (130, "auditor: interrupted\n")
