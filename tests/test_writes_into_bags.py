"""No command writes into a signed bag, whichever bag it was given: a file added or replaced
there fails verification, and nothing said so when it was written (probe30: `auditor report
RUN1 -o RUN2/data/report` replaced run 2's signed report, `scan BAG --findings
BAG/data/findings.jsonl` its signed findings)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import build_chain, copy_bag, make_keys, record_files

from auditor.cli import main
from auditor.resources import example_policy


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def runs(keys, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("runs"), keys[1], messages=24)


@pytest.fixture(scope="module")
def export(runs, tmp_path_factory):
    """Run 1's records as an export: what `pull --from` and `run --from` read."""
    path = tmp_path_factory.mktemp("export") / "export.jsonl"
    lines = record_files(runs / "run-000001")[0].read_bytes().splitlines()
    path.write_bytes(b"".join(orjson.dumps(orjson.loads(line)["record"]) + b"\n" for line in lines))
    return path


def _invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


# Each command that writes, and where in the victim bag it is told to write.
WRITES = {
    "report": lambda ctx, target: ["report", ctx["runs"] / "run-000001", "-o", target],
    "prove": lambda ctx, target: [
        "prove",
        ctx["runs"] / "run-000001",
        "200000070000000020",
        "-o",
        target / "proof.json",
    ],
    "scan": lambda ctx, target: [
        "scan",
        "--policies",
        example_policy(),
        ctx["victim"],
        "--findings",
        target / "findings.jsonl",
    ],
    "validate": lambda ctx, target: [
        "validate",
        ctx["export"],
        "--findings",
        target / "findings.jsonl",
    ],
    "keygen": lambda ctx, target: ["keygen", "--out", target],
    "pull": lambda ctx, target: [
        "pull",
        "--from",
        ctx["export"],
        "--out",
        target,
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-02",
    ],
    "state rebuild": lambda ctx, target: [
        "state",
        "rebuild",
        "--out",
        ctx["runs"],
        "--state",
        target / "state.db",
        "--pubkey",
        ctx["public_key"],
    ],
    "run --out": lambda ctx, target: [
        "run",
        "--from",
        ctx["export"],
        "--policies",
        example_policy(),
        "--key",
        ctx["key"],
        "--out",
        target,
        "--state",
        ctx["tmp"] / "state.db",
    ],
    "run --state": lambda ctx, target: [
        "run",
        "--from",
        ctx["export"],
        "--policies",
        example_policy(),
        "--key",
        ctx["key"],
        "--out",
        ctx["tmp"] / "archive",
        "--state",
        target / "state.db",
    ],
}


@pytest.mark.parametrize("where", ["data/report", "data", "."])
@pytest.mark.parametrize("command", sorted(WRITES))
def test_a_command_told_to_write_into_another_bag_refuses_and_the_bag_still_verifies(
    runs, keys, export, tmp_path, command, where
):
    victim = copy_bag(runs / "run-000002", tmp_path)
    target = victim / where
    context = {
        "runs": runs,
        "victim": victim,
        "export": export,
        "key": keys[0].private_key,
        "public_key": keys[0].public_key,
        "tmp": tmp_path,
    }
    before = sorted(path.relative_to(victim) for path in victim.rglob("*"))

    result = _invoke(*WRITES[command](context, target))
    checked = _invoke("verify", victim, "--pubkey", keys[0].public_key)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("auditor: error: "), result.stderr
    assert f" is inside the bag {victim}: writing " in result.stderr, result.stderr
    assert result.stderr.endswith(
        " there would change a signed archive; choose a folder outside it\n"
    ), result.stderr
    assert checked.exit_code == 0, checked.output
    assert sorted(path.relative_to(victim) for path in victim.rglob("*")) == before


def test_a_folder_beside_the_bags_is_not_a_bag(runs, tmp_path):
    beside = tmp_path / "proofs" / "proof.json"
    beside.parent.mkdir()

    result = _invoke("prove", runs / "run-000001", "200000070000000020", "-o", beside)

    assert result.exit_code == 0, result.output
    assert beside.is_file()
