"""`auditor due` never lists a held message for deletion (probe 23 #1, #2): a hold that begins
after a run's reference time is stored in the message index as holding already, and
`due --policy CURRENT.yaml` applies a hold added to the policy after the runs.

One real run against the emulator, hours 0-6 judged as of 2026-11-01T06:00, with the example
policy's hold on user0007 and user0042 moved to begin on 2026-12-01."""

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.resources import example_policy

SECRET = "due-holds-test-secret"
CUSTODIANS = ("user0007", "user0042")
LATER = "2028-06-01"  # every default retention (1 year) has ended, the holds are on


def later_hold_policy(path, starts="2026-12-01", participants=CUSTODIANS):
    text = example_policy().read_text().replace("starts: 2026-10-15", f"starts: {starts}")
    text = text.replace(
        "participant: [user0007, user0042]", f"participant: [{', '.join(participants)}]"
    )
    path.write_text(text)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def records(bag):
    return [
        json.loads(line)["record"]
        for path in sorted((bag / layout.RECORDS).glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def touches(record, people):
    return record.get("from") in people or record.get("to") in people


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("due-holds")
    keys = generate_key_files(folder / "keys", identity="due-holds-test")
    policy = later_hold_policy(folder / "policies.yaml")
    with run_emulator(EmulatorOptions(messages=1500, days=1, client_secret=SECRET)) as emulator:
        outcome = run_audit(
            run_support.settings_for(emulator, keys, folder, SECRET, policy_path=policy)
        )
    return folder, keys, outcome


def due_json(folder, *extra, exit_code=0, on=LATER):
    result = invoke("due", "--state", folder / "state.db", "--on", on, "--format", "json", *extra)
    assert result.exit_code == exit_code, result.output
    return json.loads(result.output[result.output.index("{") :])


def test_a_hold_beginning_after_the_run_holds_its_messages_in_due(chain):
    folder, _keys, outcome = chain
    held = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, CUSTODIANS)}
    assert held

    report = due_json(folder)

    listed = {m["msg_id"]: m for m in report["messages"]}
    assert not [i for i in held if listed.get(i, {}).get("verdict") == "delete"]
    assert {listed[i]["verdict"] for i in held} == {"hold"}
    assert {listed[i]["rule"] for i in held} == {"matter-2026-017"}
    assert report["counts"]["hold"] == len(held)
    assert report["counts"]["delete"] > 0  # the others' default retention has ended


def test_the_run_itself_still_judges_the_later_hold_as_not_begun(chain):
    _folder, _keys, outcome = chain
    findings = [
        json.loads(line) for line in (outcome.bag_path / layout.FINDINGS).read_text().splitlines()
    ]
    assert not [f for f in findings if f["category"] == "hold"]


def test_rebuild_indexes_a_later_hold_as_the_run_did(chain, tmp_path):
    folder, keys, _outcome = chain
    rebuilt = tmp_path / "rebuilt.db"
    result = invoke(
        "state",
        "rebuild",
        "--out",
        folder / "archive",
        "--state",
        rebuilt,
        "--pubkey",
        keys.public_key,
    )
    assert result.exit_code == 0, result.output
    query = (
        "SELECT msg_id, retain_until_ms, action, rule FROM messages ORDER BY msg_id, content_hash"
    )
    with (
        closing(sqlite3.connect(rebuilt)) as new,
        closing(sqlite3.connect(folder / "state.db")) as old,
    ):
        assert new.execute(query).fetchall() == old.execute(query).fetchall()


def test_rebuild_builds_none_of_the_bags_keyword_matchers(chain, tmp_path):
    """`state rebuild` indexes each bag by its policy's retention rules and holds alone: loading
    each bag's policy with its matchers cost a normalised term list and pattern checks a bag.
    A fresh interpreter shows none was built (`BUILT`, below)."""
    folder, keys, _outcome = chain
    command = ["state", "rebuild", "--out", folder / "archive", "--state", tmp_path / "r.db"]
    command += ["--pubkey", keys.public_key]

    done = subprocess.run(
        [sys.executable, "-c", BUILT, *map(str, command)], capture_output=True, text=True
    )

    built = json.loads(done.stdout)
    assert built["exit"] == 0, built["output"]
    assert (built["normalizers"], built["patterns"]) == (0, 0)


# -- due --policy: a hold added after the runs ---------------------------------------------------

ADDED = ("user0013",)


def current_policy(folder):
    """The run's policy with a hold on user0013 added since."""
    current = folder / "current.yaml"
    text = (folder / "policies.yaml").read_text()
    current.write_text(
        text.replace(
            "holds:\n",
            "holds:\n  - id: matter-2027-001\n    reason: added after the run\n"
            "    scope:\n      participant: [user0013]\n    starts: 2027-01-01\n",
            1,
        )
    )
    return current


def test_due_with_the_current_policy_holds_what_a_hold_added_since_covers(chain):
    folder, _keys, outcome = chain
    added = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, ADDED)}
    before = {m["msg_id"]: m["verdict"] for m in due_json(folder)["messages"]}
    deleted = {i for i in added if before.get(i) == "delete"}
    assert deleted  # what the index alone would have the officer delete

    report = due_json(folder, "--policy", current_policy(folder), "--out", folder / "archive")

    listed = {m["msg_id"]: m for m in report["messages"]}
    assert {(listed[i]["verdict"], listed[i]["rule"]) for i in deleted} == {
        ("hold", "matter-2027-001")
    }
    candidates = {i for i in added if before.get(i) in ("delete", "review", "no-retention")}
    assert report["policy_holds"]["held"] == len(candidates)
    assert report["policy_holds"]["unchecked"] == 0
    assert report["counts"]["delete"] == list(before.values()).count("delete") - len(deleted)


def test_due_with_a_policy_refuses_a_chain_folder_without_its_bags(chain, tmp_path):
    folder, _keys, _outcome = chain
    result = invoke(
        "due",
        "--state",
        folder / "state.db",
        "--on",
        LATER,
        "--policy",
        folder / "policies.yaml",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "none of the chain's bags" in result.output


def test_due_with_a_config_finds_the_bags_where_the_runs_wrote_them(chain, tmp_path, monkeypatch):
    """As README's Scheduling shows it: the config puts the bags in `archive/` beside the state,
    and `due --config auditor.yaml` reads them there, from wherever it runs (probe due27 #3:
    `--state state.db` alone looked for them in the state's folder and stopped with exit 2)."""
    folder = chain[0]
    config = folder / "auditor.yaml"
    config.write_text("run:\n  state: state.db\n  out: archive/\n")
    monkeypatch.chdir(tmp_path)
    current = current_policy(folder)
    given = due_json(folder, "--policy", current, "--out", folder / "archive")

    without = invoke("due", "--state", folder / "state.db", "--policy", current, "--on", LATER)
    result = invoke(
        "due", "--config", config, "--policy", current, "--on", LATER, "--format", "json"
    )

    assert without.exit_code == 2 and "--config" in without.output
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{") :])
    assert without_memo_counts(answer) == without_memo_counts(given)
    assert given["policy_holds"]["held"] and not given["policy_holds"]["unchecked"]


def without_memo_counts(answer):
    """`due`'s JSON but for how many messages came from the bags or from `STATE.due-holds`,
    which the order the module's tests run in decides (the first `due --policy` fills it)."""
    holds = {k: v for k, v in answer["policy_holds"].items() if k not in ("read", "remembered")}
    return {**answer, "policy_holds": holds}


def edited_copy(chain, tmp_path):
    """The chain's bags copied, with one line due for deletion edited so that the new hold no
    longer covers it (another sender, the same msg_id); its msg_id, and the due list before."""
    folder, _keys, outcome = chain
    before = {m["msg_id"]: m["verdict"] for m in due_json(folder)["messages"]}
    copy = tmp_path / "archive"
    shutil.copytree(folder / "archive", copy)
    bag = copy / outcome.bag_path.name
    target = next(
        r["msg_id"]
        for r in records(bag)
        if r.get("from") == "user0013" and before.get(r["msg_id"]) == "delete"
    )
    for path in (bag / layout.RECORDS).glob("*.jsonl"):
        lines = path.read_bytes().splitlines(keepends=True)
        for number, line in enumerate(lines):
            if json.loads(line)["record"].get("msg_id") == target:
                lines[number] = line.replace(b'"from":"user0013"', b'"from":"user0099"')
                path.write_bytes(b"".join(lines))
    return copy, target, before


def test_due_with_a_policy_lists_a_message_changed_in_its_bag_as_unchecked(chain, tmp_path):
    """The changed line is not the message the index names: never read as free of the hold,
    and never listed for deletion (a script deleting the `delete` rows would have deleted it)
    but as `unchecked`, with why, and exit 1 (probe due21 #2)."""
    folder = chain[0]
    copy, target, before = edited_copy(chain, tmp_path)

    report = due_json(folder, "--policy", current_policy(folder), "--out", copy, exit_code=1)

    assert report["policy_holds"]["unchecked"] == 1
    assert report["policy_holds"]["unchecked_why"] == {"changed": 1}
    listed = {m["msg_id"]: m for m in report["messages"]}
    assert (listed[target]["verdict"], listed[target]["rule"]) == ("unchecked", "default")
    assert report["counts"]["unchecked"] == 1
    assert report["counts"]["delete"] < list(before.values()).count("delete")
    assert target not in {m["msg_id"] for m in report["messages"] if m["verdict"] == "delete"}


def test_due_with_a_policy_says_on_stderr_why_it_exits_1(chain, tmp_path):
    """The officer reading the table (or a script checking the exit code) is told, after the
    listing, that some messages could not be checked; `--since` lists them still."""
    folder = chain[0]
    copy, target, _before = edited_copy(chain, tmp_path)
    command = [sys.executable, "-m", "auditor", "due", "--state", str(folder / "state.db")]
    command += ["--on", LATER, "--since", LATER, "--policy", str(current_policy(folder))]

    done = subprocess.run(
        [*command, "--out", str(copy)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 1, done.stderr
    assert "1 message(s) due could not be checked" in done.stderr
    assert "changed: 1" in done.stderr and "Traceback" not in done.stderr
    assert [line.split()[:2] for line in done.stdout.splitlines() if target in line] == [
        ["unchecked", target]
    ]


# -- due --policy: a hold released after the runs ------------------------------------------------


def released_policy(folder, ends="2027-06-30"):
    """The run's policy, its open-ended hold given an end since (legal released it)."""
    current = folder / "released.yaml"
    text = (folder / "policies.yaml").read_text()
    assert "    # ends: 2027-06-30" in text
    current.write_text(text.replace("    # ends: 2027-06-30", f"    ends: {ends}", 1))
    return current


def test_due_with_the_current_policy_no_longer_holds_what_a_released_hold_held(chain):
    """A hold open-ended when the runs judged their messages, released since: its messages
    come back as their retention rules say, not `hold` for ever (probe months25 #1)."""
    folder, _keys, outcome = chain
    held = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, CUSTODIANS)}
    before = due_json(folder)

    report = due_json(folder, "--policy", released_policy(folder), "--out", folder / "archive")

    listed = {m["msg_id"]: m for m in report["messages"]}
    verdicts = {(listed[i]["verdict"], listed[i]["rule"]) for i in held if i in listed}
    assert ("delete", "default") in verdicts  # one year ended by LATER, as for the others
    assert not {verdict for verdict, _rule in verdicts} & {"hold", "unchecked"}
    assert "matter-2026-017" not in {rule for _verdict, rule in verdicts}
    assert report["policy_holds"]["released"] == len(held)
    assert "hold" not in report["counts"]
    assert sum(report["counts"].values()) == sum(before["counts"].values())


def test_a_released_hold_lists_nothing_while_the_retention_runs(chain):
    """Released on 2027-06-30, asked on 2027-07-15: the default year has not ended."""
    folder, _keys, outcome = chain
    held = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, CUSTODIANS)}
    report = due_json(
        folder, "--policy", released_policy(folder), "--out", folder / "archive", on="2027-07-15"
    )

    assert not held & {m["msg_id"] for m in report["messages"]}
    assert report["policy_holds"]["released"] == len(held)


def test_due_keeps_a_released_hold_before_its_end_and_under_another_hold(chain):
    folder, _keys, outcome = chain
    held = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, CUSTODIANS)}
    still = released_policy(folder, ends="2028-12-31")  # LATER is before its end

    report = due_json(folder, "--policy", still, "--out", folder / "archive")

    assert {m["msg_id"] for m in report["messages"] if m["verdict"] == "hold"} == held
    assert report["policy_holds"]["released"] == 0

    other = folder / "released-other.yaml"
    other.write_text(
        released_policy(folder)
        .read_text()
        .replace(
            "holds:\n",
            "holds:\n  - id: matter-2028-002\n    reason: one custodian again\n"
            "    scope:\n      participant: [user0042]\n    starts: 2028-01-01\n",
            1,
        )
    )
    report = due_json(folder, "--policy", other, "--out", folder / "archive")

    listed = {m["msg_id"]: m for m in report["messages"]}
    again = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, ("user0042",))}
    assert {(listed[i]["verdict"], listed[i]["rule"]) for i in again} == {
        ("hold", "matter-2028-002")
    }
    assert not {listed[i]["verdict"] for i in held - again if i in listed} & {"hold"}


def test_a_hold_added_since_covers_its_messages_while_their_retention_runs(chain):
    """Asked on 2027-03-01, the default year of the run's messages still runs: the index counts
    user0013's messages as `kept`, yet the hold added since covers them and they are listed as
    held by it, as its own run would (probe months25: 36 messages a hold added on day 61 did not
    cover while their retention ran)."""
    folder, _keys, outcome = chain
    added = {r["msg_id"] for r in records(outcome.bag_path) if touches(r, ADDED)}
    on = "2027-03-01"
    before = due_json(folder, on=on)
    assert not added & {m["msg_id"] for m in before["messages"]}  # kept: not listed

    report = due_json(
        folder, "--policy", current_policy(folder), "--out", folder / "archive", on=on
    )

    listed = {m["msg_id"]: m for m in report["messages"]}
    assert {(listed[i]["verdict"], listed[i]["rule"]) for i in added} == {
        ("hold", "matter-2027-001")
    }
    assert report["counts"]["kept"] == before["counts"]["kept"] - len(added)
    assert report["policy_holds"]["held"] == len(added)


def test_due_reads_again_only_the_runs_that_did_not_apply_a_hold(chain, tmp_path):
    """The run's own policy holds every hold of the policy given: nothing of its retention
    still running is read again, since the index already holds what those holds cover."""
    folder = chain[0]
    report = due_json(
        folder, "--policy", folder / "policies.yaml", "--out", folder / "archive", on="2027-03-01"
    )
    assert report["policy_holds"]["read"] == 0


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run 1 applied the policy without the hold on user0010-user0019, run 2 (after it was
    added) with it: the folder, both bags, the policy with the hold and whom it holds."""
    folder = tmp_path_factory.mktemp("two-runs")
    keys = generate_key_files(folder / "keys", identity="due-holds-test")
    before = later_hold_policy(folder / "policies.yaml")
    after = folder / "after.yaml"
    after.write_text(current_policy(folder).read_text().replace("[user0013]", "[user001*]"))
    people = tuple(f"user001{digit}" for digit in range(10))
    runs = []
    with run_emulator(EmulatorOptions(messages=600, days=1, client_secret=SECRET)) as emulator:
        for policy, since in ((before, DEFAULT_START_MS), (after, DEFAULT_START_MS + 3 * HOUR_MS)):
            settings = run_support.settings_for(
                emulator, keys, folder, SECRET, policy_path=policy, since_ms=since,
                until_ms=since + 3 * HOUR_MS,
            )  # fmt: skip
            runs.append(run_audit(settings).bag_path)
    return folder, runs, after, people


def fresh_state(folder, tmp_path):
    """A copy of the chain's state alone, beside nothing an earlier `due` left."""
    copy = tmp_path / "state"
    copy.mkdir(parents=True)
    shutil.copy(folder / "state.db", copy / "state.db")
    return copy


def test_only_the_runs_from_before_a_hold_was_added_are_read_again(two_runs, tmp_path):
    """On a day every retention still runs, `due --policy` reads run 1's messages only, and
    lists those the hold covers in both runs as held by it."""
    folder, runs, after, people = two_runs
    added = {r["msg_id"] for bag in runs for r in records(bag) if touches(r, people)}
    in_first = {r["msg_id"] for r in records(runs[0])}
    assert added & in_first and added - in_first
    state = fresh_state(folder, tmp_path)

    report = due_json(state, "--policy", after, "--out", folder / "archive", on="2027-03-01")

    held_before = {m["msg_id"] for m in due_json(state, on="2027-03-01")["messages"]}
    assert report["policy_holds"]["read"] == len(in_first - held_before)
    assert {m["msg_id"] for m in report["messages"] if m["rule"] == "matter-2027-001"} == added


def test_a_bag_missing_from_the_folder_lists_its_messages_as_unchecked(two_runs, tmp_path):
    """Run 1's bag is gone from the folder: its messages the hold might cover are `unchecked`,
    with one line naming the bag and exit 1, and run 2's are still answered (probe due27 #2:
    the whole listing stopped with exit 2)."""
    folder, runs, after, people = two_runs
    copy = tmp_path / "archive"
    shutil.copytree(folder / "archive", copy)
    shutil.rmtree(copy / runs[0].name)
    state = fresh_state(folder, tmp_path)
    held_before = {m["msg_id"] for m in due_json(state, on="2027-03-01")["messages"]}
    in_first = {r["msg_id"] for r in records(runs[0])}
    command = [sys.executable, "-m", "auditor", "due", "--state", str(state / "state.db")]
    command += ["--on", "2027-03-01", "--policy", str(after), "--out", str(copy)]

    done = subprocess.run([*command, "--format", "json"], capture_output=True, text=True)

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    unchecked = {m["msg_id"] for m in report["messages"] if m["verdict"] == "unchecked"}
    assert unchecked == in_first - held_before
    assert report["policy_holds"]["missing_bags"] == {runs[0].name: len(unchecked)}
    assert report["policy_holds"]["unchecked_why"] == {"no-bag": len(unchecked)}
    second = {r["msg_id"] for r in records(runs[1]) if touches(r, people)}
    assert {m["msg_id"] for m in report["messages"] if m["verdict"] == "hold"} >= second
    lines = [line for line in done.stderr.splitlines() if runs[0].name in line]
    assert len(lines) == 1 and "unchecked" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_second_due_takes_what_the_first_learnt_of_the_bags(two_runs, tmp_path):
    """A daily `due --policy` read run 1's bag every day while its retention ran (probe due27
    #1): what the first call learnt is kept beside the state, and the next reads none of the
    messages of run 1 it judged, with the same answer."""
    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    asked = ("--policy", after, "--out", folder / "archive")

    first = due_json(state, *asked, on="2027-03-01")
    second = due_json(state, *asked, on="2027-03-01")
    later = due_json(state, *asked)  # most retentions ended: the deletions are read again

    read = first["policy_holds"]["read"]
    assert read and first["policy_holds"]["remembered"] == 0
    assert (second["policy_holds"]["read"], second["policy_holds"]["remembered"]) == (0, read)
    assert (second["messages"], second["counts"]) == (first["messages"], first["counts"])
    assert later["policy_holds"]["read"] > later["policy_holds"]["remembered"]
    assert (state / "state.db.due-holds").is_file()


def test_what_due_learnt_does_not_answer_another_hold(two_runs, tmp_path):
    """A hold of another scope, or an earlier version's memo, is not in what was learnt: the
    bag is read again, and the answer is the one a first reading gives."""
    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    asked = ("--out", folder / "archive")
    first = due_json(state, "--policy", after, *asked, on="2027-03-01")
    other = tmp_path / "other.yaml"
    other.write_text(after.read_text().replace("[user001*]", "[user002*]"))
    alone = fresh_state(folder, tmp_path / "alone")

    report = due_json(state, "--policy", other, *asked, on="2027-03-01")

    assert report["policy_holds"]["remembered"] == 0
    assert report == due_json(alone, "--policy", other, *asked, on="2027-03-01")
    back = due_json(state, "--policy", after, *asked, on="2027-03-01")  # user002*'s not held
    assert back["policy_holds"]["remembered"]
    assert (back["messages"], back["counts"]) == (first["messages"], first["counts"])
    with closing(sqlite3.connect(state / "state.db.due-holds")) as memo:
        memo.execute("UPDATE about SET value = 'an older version' WHERE key = 'version'")
        memo.commit()
    again = due_json(state, "--policy", after, *asked, on="2027-03-01")
    assert again["policy_holds"]["remembered"] == 0 and again["policy_holds"]["read"]


def test_a_damaged_memo_is_made_anew(two_runs, tmp_path):
    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    (state / "state.db.due-holds").write_bytes(b"not a database, a file damaged" * 100)
    asked = ("--policy", after, "--out", folder / "archive")

    first = due_json(state, *asked, on="2027-03-01")
    second = due_json(state, *asked, on="2027-03-01")

    assert first["policy_holds"]["read"] and not first["policy_holds"]["remembered"]
    assert second["policy_holds"]["remembered"] == first["policy_holds"]["read"]


def test_due_answers_alike_where_it_cannot_keep_what_it_learnt(two_runs, tmp_path):
    """A copy of the state in a folder `due` may not write: every call reads the bags."""
    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    (state / "state.db.due-holds").mkdir()  # in the memo's way, as an unwritable folder is
    asked = ("--policy", after, "--out", folder / "archive")

    first = due_json(state, *asked, on="2027-03-01")
    second = due_json(state, *asked, on="2027-03-01")

    assert first == second and second["policy_holds"]["remembered"] == 0


def test_a_second_due_loads_no_bag_policy_again(two_runs, tmp_path):
    """Which holds each run applied is learnt once: with run 2's policy gone from its bag after
    the first call, the second still knows run 2 applied the hold and reads nothing of it (it
    was loaded again on every call, each distinct policy with its term files)."""
    folder, runs, after, _people = two_runs
    copy = tmp_path / "archive"
    shutil.copytree(folder / "archive", copy)
    state = fresh_state(folder, tmp_path)
    asked = ("--policy", after, "--out", copy)
    first = due_json(state, *asked, on="2027-03-01")
    (copy / runs[1].name / layout.POLICY).unlink()

    second = due_json(state, *asked, on="2027-03-01")

    assert (second["policy_holds"]["read"], second["messages"]) == (0, first["messages"])
    alone = fresh_state(folder, tmp_path / "alone")
    assert due_json(alone, *asked, on="2027-03-01")["policy_holds"]["read"] > 0


def test_what_due_keeps_tells_apart_scopes_that_differ_in_any_field():
    """The memo answers a hold by its scope's key: a field of `Scope` the key left out would let
    one hold's answer stand for another's, and a message it covers be listed for deletion."""
    from dataclasses import fields, replace

    from auditor.due_memo import scope_key
    from auditor.policies.scope import IdPattern, Scope

    values = {
        "chat_types": frozenset({"groupchat"}),
        "message_types": frozenset({"txt"}),
        "sent_since_ms": DEFAULT_START_MS,
        "sent_until_ms": DEFAULT_START_MS + HOUR_MS,
    }
    blank = scope_key(Scope())
    for field in fields(Scope):
        changed = replace(Scope(), **{field.name: values.get(field.name, IdPattern.of(["u1"]))})
        assert scope_key(changed) != blank, field.name
    assert scope_key(Scope(senders=IdPattern.of(["u1"]))) != scope_key(
        Scope(senders=IdPattern.of(["u1*"]))
    )


# -- due --policy reads the retention rules and holds, not the keyword lists ---------------------

VENDOR_LIST = """
  - id: vendor-zh
    severity: medium
    normalize: [decode, nfkc, case, separators, pinyin]
    terms_file: lists/vendor.txt
"""


def with_vendor_list(policy, folder, terms="洗钱\n内幕消息\n回扣\n"):
    """`policy` with one more keyword list, spelled in pinyin, whose terms come from a file."""
    (folder / "lists").mkdir(parents=True, exist_ok=True)
    (folder / "lists" / "vendor.txt").write_text(terms, encoding="utf-8")
    head, tail = policy.read_text().split("\ndetectors:\n", 1)
    path = folder / "vendor.yaml"
    path.write_text(f"{head}{VENDOR_LIST}\ndetectors:\n{tail}")
    return path


BUILT = """
import json, sys
from click.testing import CliRunner
from auditor.cli import main
from auditor.policies import loading, normalize
result = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps({
    "exit": result.exit_code, "output": result.output,
    "normalizers": normalize.normalizer.cache_info().currsize,
    "patterns": loading._backtracking.cache_info().currsize,
    "pypinyin": "pypinyin" in sys.modules,
}))
"""


def test_due_with_a_policy_builds_none_of_its_keyword_matchers(two_runs, tmp_path):
    """`due` applies retention rules and holds only: loading the policy built its normalised
    terms, pattern checks and pinyin step besides (seconds and hundreds of MB with a vendor's
    list of 200,000 terms), for the current policy and each bag's. A fresh interpreter shows
    none was built, and the answer is the one the policy without the list gives."""
    folder, _runs, after, _people = two_runs
    vendor = with_vendor_list(after, tmp_path)
    state = fresh_state(folder, tmp_path)  # no memo: every bag's own policy is loaded too
    asked = ["--out", folder / "archive", "--on", "2027-03-01", "--format", "json"]
    command = ["due", "--state", state / "state.db", "--policy", vendor, *asked]

    done = subprocess.run(
        [sys.executable, "-c", BUILT, *map(str, command)], capture_output=True, text=True
    )

    built = json.loads(done.stdout)
    assert built["exit"] == 0, built["output"]
    assert (built["normalizers"], built["patterns"], built["pypinyin"]) == (0, 0, False)
    answer = json.loads(built["output"][built["output"].index("{") :])
    alone = fresh_state(folder, tmp_path / "alone")
    assert answer == due_json(alone, "--policy", after, *asked[:4])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("keep_for: 1y", "keep_for: 1 yr"),
        ("starts: 2026-12-01", "starts: 2026-13-01"),
        ("reason:", "why:"),
        ("id: en-misconduct", "id: zh-misconduct"),
        ("lists/vendor.txt", "lists/missing.txt"),
        ("severity: medium\n    normalize", "severity: urgent\n    normalize"),
        ("\nholds:", "\nholds: [\n"),
    ],
)
def test_due_refuses_a_broken_policy_as_policy_check_does(two_runs, tmp_path, old, new):
    """One line naming the file, line and field, exit 2, before the state is read: a broken
    retention rule or hold, a key the schema refuses, an id given twice, a term file missing
    (what the runs applied includes its bytes)."""
    folder, _runs, after, _people = two_runs
    vendor = with_vendor_list(after, tmp_path)
    text = vendor.read_text()
    assert old in text
    vendor.write_text(text.replace(old, new, 1))

    due = invoke("due", "--state", folder / "state.db", "--policy", vendor)
    check = invoke("policy", "check", vendor)

    assert (due.exit_code, check.exit_code) == (2, 2)
    assert due.output == check.output and due.output.count("\n") == 1, due.output


def test_a_fault_in_a_keyword_list_alone_is_left_to_the_runs(two_runs, tmp_path):
    """As README says: `due` checks what it applies, not the keyword lists' patterns and terms
    (its answer does not depend on them); `policy check`, as a run, stops on such a fault with
    one line and exit 2, where the officer learns of it."""
    folder, _runs, after, _people = two_runs
    broken = tmp_path / "broken.yaml"
    text = after.read_text()
    assert "    patterns:\n" in text
    broken.write_text(text.replace("    patterns:\n", "    patterns:\n      - '(unclosed'\n", 1))

    due = invoke("due", "--state", folder / "state.db", "--policy", broken, "--out",
                 folder / "archive", "--on", "2027-03-01")  # fmt: skip
    check = invoke("policy", "check", broken)

    assert due.exit_code == 0, due.output
    assert check.exit_code == 2 and "invalid regular expression '(unclosed'" in check.output


def test_due_refuses_a_term_file_that_is_not_text(two_runs, tmp_path):
    folder, _runs, after, _people = two_runs
    vendor = with_vendor_list(after, tmp_path)
    (tmp_path / "lists" / "vendor.txt").write_bytes(b"\xff\xfe\x00bad")

    due = invoke("due", "--state", folder / "state.db", "--policy", vendor)

    assert due.exit_code == 2
    assert due.output == invoke("policy", "check", vendor).output
    assert "vendor.txt:1: not UTF-8 text" in due.output


def test_a_policy_loaded_without_matchers_is_never_applied_to_records():
    """It has no keyword list or detector: an engine given it would find nothing, silently."""
    from auditor.policies import PolicyEngine, load_policy

    policy = load_policy(example_policy(), matchers=False)

    assert (policy.keyword_lists, policy.detectors, policy.holds != ()) == ((), (), True)
    with pytest.raises(ValueError, match="without its keyword lists"):
        PolicyEngine(policy, DEFAULT_START_MS)


# -- what due learnt is kept for the code that learnt it -----------------------------------------


@pytest.fixture
def other_code(monkeypatch, tmp_path):
    """`due_memo`'s sources as if scope matching had changed: `scope.py` with one line more."""
    from auditor import due_memo

    changed = tmp_path / "scope.py"
    sources = due_memo.sources()
    scope = next(path for path in sources if path.name == "scope.py")
    changed.write_bytes(scope.read_bytes() + b"# a change to how scopes match\n")
    monkeypatch.setattr(
        due_memo, "sources", lambda: [changed if p == scope else p for p in sources]
    )
    due_memo.code_key.cache_clear()
    yield
    monkeypatch.undo()
    due_memo.code_key.cache_clear()


def test_what_due_learnt_is_forgotten_when_scope_matching_changes(two_runs, tmp_path, request):
    """The memo was kept for auditor 0.1.0 and a format number raised by hand: code that
    matched scopes otherwise answered from what the old code learnt. Its key is now a digest of
    the matching code's source, so changed code reads the bags again, and answers alike."""
    from auditor import due_memo

    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    asked = ("--policy", after, "--out", folder / "archive")
    first = due_json(state, *asked, on="2027-03-01")
    assert due_json(state, *asked, on="2027-03-01")["policy_holds"]["read"] == 0  # remembered
    key = due_memo.code_key()

    request.getfixturevalue("other_code")
    changed = due_json(state, *asked, on="2027-03-01")

    assert due_memo.code_key() != key
    assert changed["policy_holds"]["remembered"] == 0
    assert changed == first


def test_the_memo_key_covers_every_module_that_decides_what_a_scope_covers():
    """Those modules' own imports from the auditor are among them, so no code that changes
    what a scope covers is outside the key; each is read as its source, compiled or not."""
    import ast

    from auditor import due_memo
    from auditor.policies.reading import facts_of
    from auditor.policies.scope import ScopeSet

    matching = set(due_memo.MATCHING)
    assert {ScopeSet.__module__, facts_of.__module__, "auditor.records"} <= matching
    for name in ("auditor.records", "auditor.policies.reading", "auditor.policies.scope"):
        source = next(p for p in due_memo.sources() if p.stem == name.rpartition(".")[2])
        assert source.suffix == ".py"
        tree = ast.parse(source.read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("auditor")
        }
        assert imported <= matching, name


def test_a_hold_over_every_message_is_kept_as_one_range_a_bag(two_runs, tmp_path):
    """The memo kept a row for each message a hold covered: 216 bytes each, 216 MB for a hold
    over a million messages, read back into memory on every call. It keeps ranges of lines now,
    one a bag here, and the answer from them is the answer from the bags."""
    folder, runs, after, _people = two_runs
    broad = tmp_path / "broad.yaml"
    broad.write_text(
        after.read_text().replace("participant: [user001*]", "sent: {since: 2020-01-01}")
    )
    state = fresh_state(folder, tmp_path)
    asked = ("--policy", broad, "--out", folder / "archive")

    first = due_json(state, *asked, on="2027-03-01")
    second = due_json(state, *asked, on="2027-03-01")

    assert first["policy_holds"]["read"] > 100 and "kept" not in first["counts"]
    assert (second["policy_holds"]["read"], second["policy_holds"]["remembered"]) == (
        0, first["policy_holds"]["read"],
    )  # fmt: skip
    assert (second["messages"], second["counts"]) == (first["messages"], first["counts"])
    with closing(sqlite3.connect(state / "state.db.due-holds")) as memo:
        assert memo.execute("SELECT count(*) FROM covered").fetchone()[0] == len(runs)


def test_a_message_the_memo_says_several_holds_cover_is_named_as_a_run_names_it():
    """SQLite names the hold by the first bit set in `_by_longest` order: for every set of
    holds, the one `longest_hold` (the run's choice) names, the first listed of equals."""
    from itertools import combinations

    from auditor.due_holds import _by_longest
    from auditor.policies.model import Hold
    from auditor.policies.retention import longest_hold
    from auditor.policies.scope import Scope

    ends = [DEFAULT_START_MS, None, DEFAULT_START_MS + HOUR_MS, None, DEFAULT_START_MS]
    holds = tuple(Hold(f"h{n}", "why", Scope(), 0, end, n) for n, end in enumerate(ends))
    order = _by_longest(holds)
    for size in range(1, len(holds) + 1):
        for bits in combinations(range(len(holds)), size):
            first = next(bit for bit in order if bit in bits)
            assert holds[first] is longest_hold([holds[bit] for bit in bits]), bits


def test_the_memo_answers_a_policy_of_two_hundred_holds(two_runs, tmp_path):
    """A firm with hundreds of open holds paid the full reading every day: the memo answered
    at most 62 (a bit each of an SQLite integer). With 200, the second call reads nothing,
    and names each held message's hold as the reading of the bags did."""
    folder, _runs, after, _people = two_runs
    many = tmp_path / "many.yaml"
    extra = "".join(
        f"  - id: matter-{n:04d}\n    reason: one of many\n"
        f"    scope:\n      participant: [user{n:04d}]\n    starts: 2027-01-01\n"
        for n in range(20, 220)
    )
    many.write_text(after.read_text().replace("holds:\n", "holds:\n" + extra, 1))
    state = fresh_state(folder, tmp_path)
    asked = ("--policy", many, "--out", folder / "archive")

    first = due_json(state, *asked, on="2027-03-01")
    second = due_json(state, *asked, on="2027-03-01")

    held = {m["rule"] for m in first["messages"] if m["verdict"] == "hold"}
    assert len(held & {f"matter-{n:04d}" for n in range(20, 220)}) > 10
    assert first["policy_holds"]["read"] and first["policy_holds"]["remembered"] == 0
    assert (second["policy_holds"]["read"], second["policy_holds"]["remembered"]) == (
        0, first["policy_holds"]["read"],
    )  # fmt: skip
    assert (second["messages"], second["counts"]) == (first["messages"], first["counts"])


def test_the_segments_name_the_first_rank_covering_each_seq_as_the_ranges_do():
    """Overlapping, touching and repeated ranges of many scopes, some of no open hold: each
    seq falls in at most one segment, which names the smallest rank of a scope covering it."""
    import random
    from itertools import pairwise

    from auditor.due_holds import _segments

    rng = random.Random(29)
    for _ in range(200):
        rank_of = {f"s{n}": rng.randrange(100) for n in range(rng.randrange(1, 80))}
        ranges = []
        for _ in range(rng.randrange(40)):
            first = rng.randrange(60)
            ranges.append((f"s{rng.randrange(90)}", first, first + rng.randrange(8)))
        segments = list(_segments(ranges, rank_of))
        for seq in range(-1, 75):
            covering = [rank_of[s] for s, a, b in ranges if a <= seq <= b and s in rank_of]
            found = [rank for a, b, rank in segments if a <= seq <= b]
            assert found == ([min(covering)] if covering else []), (ranges, seq)
        assert all(a <= b for a, b, _ in segments)
        assert all(s[1] < t[0] for s, t in pairwise(segments))


def test_what_the_memo_answers_costs_sqlite_about_the_same_for_forty_more_holds(
    two_runs, tmp_path, monkeypatch
):
    """The memo's SQL took a bit a hold, and SQLite evaluated the whole mask again for each
    hold's WHEN: holds squared lookups a message (60 holds over 2,969 messages: 55-66 s of CPU,
    against 0.7 s now). Counted in SQLite's VM steps, which load does not change: a second call
    with 40 more open holds (none covering a message) costs about what it costs without."""
    import sqlite3 as sqlite

    from auditor.due import due
    from auditor.partitions import parse_instant
    from auditor.policies.loading import load_policy

    folder, _runs, after, _people = two_runs
    steps = [0]
    connect = sqlite.connect

    def counted(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 100)
        return db

    monkeypatch.setattr(sqlite, "connect", counted)
    extra = "".join(
        f"  - id: absent-{n:02d}\n    reason: one of many\n"
        f"    scope:\n      participant: [nobody{n:02d}]\n    starts: 2027-01-01\n"
        for n in range(40)
    )
    many = tmp_path / "many.yaml"
    many.write_text(after.read_text().replace("holds:\n", "holds:\n" + extra, 1))

    def second_call(policy_path, where):
        state = fresh_state(folder, where)
        policy = load_policy(policy_path, matchers=False)
        on = parse_instant("2027-03-01")
        for _ in range(2):
            steps[0] = 0
            with due(state / "state.db", on, None, policy, folder / "archive") as report:
                listed = list(report.messages)
        assert report.rejudged.read == 0 and report.rejudged.remembered > 50
        return steps[0], listed

    few, listed = second_call(after, tmp_path / "few")
    more, listed_more = second_call(many, tmp_path / "more")

    assert listed_more == listed
    assert more < 1.5 * few, (few, more)


def test_coverage_keeps_each_scope_s_runs_of_lines_read_as_ranges():
    """`Coverage.see` visits only the bits set and the ranges open: its ranges are still, for
    each scope, the runs of consecutive lines read that it covers, in two bags read in turn."""
    import random

    from auditor.due_memo import Coverage

    rng = random.Random(29)
    for _ in range(100):
        scopes = [f"s{n}" for n in range(rng.randrange(1, 70))]
        coverage = Coverage(scopes)
        seen = {}
        for run in (1, 2):
            seqs = sorted(rng.sample(range(200), rng.randrange(0, 60)))
            seen[run] = [(seq, rng.getrandbits(len(scopes)) & rng.getrandbits(len(scopes)))
                         for seq in seqs]  # fmt: skip
            for seq, mask in seen[run]:
                coverage.see(run, seq, mask)
        for run in (1, 2):
            expected = {scope: [] for scope in scopes}
            for bit, scope in enumerate(scopes):
                span = None
                for seq, mask in seen[run]:
                    if mask >> bit & 1:
                        span = [seq, seq] if span is None else [span[0], seq]
                    elif span is not None:
                        expected[scope].append(tuple(span))
                        span = None
                if span is not None:
                    expected[scope].append(tuple(span))
            found = coverage.of(run)
            assert {scope: sorted(ranges) for scope, ranges in found.items()} == expected


DUE_POLICY_MODULES = """
import contextlib, io, sys
from auditor.cli import main

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main.main(["due", *sys.argv[1:]], prog_name="auditor")
    except SystemExit as done:
        assert done.code == 0, done.code
print(*sorted(sys.modules))
"""


def test_due_with_a_policy_imports_none_of_what_builds_its_matchers(two_runs, tmp_path):
    """A daily `due --policy` (README's script) loads the policy without its matchers, so it
    needs neither the detectors, the normaliser, pinyin nor the pattern analysis (about a third
    of the policy loader's imports), nor the report's formats. It reads bags' lines again without
    verifying them, so it needs neither the verifier and cryptography nor the state machinery."""
    folder, _runs, after, _people = two_runs
    state = fresh_state(folder, tmp_path)
    asked = ["--state", str(state / "state.db"), "--on", "2027-03-01", "--policy", str(after)]
    asked += ["--out", str(folder / "archive"), "--format", "csv"]

    shown = subprocess.run(
        [sys.executable, "-c", DUE_POLICY_MODULES, *asked], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip

    modules = set(shown.split())
    assert "auditor.policies.loading" in modules and "auditor.due_holds" in modules
    unused = (
        "auditor.policies.backtracking",
        "auditor.policies.detectors",
        "auditor.policies.normalize",
        "auditor.policies.pinyin",
        "auditor.report.formats",
        "cryptography",
        "jinja2",
    )
    assert sorted(name for name in modules if name.startswith(unused)) == []
    unverified = {"auditor.archive.verify", "auditor.state", "auditor.state_rebuild"}
    assert sorted(modules & unverified) == []
