"""The bag holds the policy file the run applied, and the report explains each rule id by it.

The schema promised the policy's name "shown in reports", and the page showed only the file's
name and digest: a reviewer saw `finance-groups` and no reason. A court handed the bag could not
read the rules the verdicts came from.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

import pytest
import run_support
from click.testing import CliRunner
from test_archive_support import recompute_manifests

from auditor import stages
from auditor.archive import layout
from auditor.archive.keys import generate_key_files, load_signing_key
from auditor.archive.publickey import load_public_key
from auditor.archive.signing import sign
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.errors import ConfigError
from auditor.policies.loading import load_policy
from auditor.report.bag import render_bag

SECRET = "policy-in-bag-secret"


def invoke(args: list[str]):
    return CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})


emulator = run_support.emulator_fixture(SECRET, messages=600)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


@pytest.fixture(scope="module")
def bag(emulator, keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy-in-bag")
    result = invoke(run_support.run_args(emulator, keys, folder, "--json"))
    assert result.exit_code in (0, 1), result.output
    (found,) = (folder / "archive").glob("run-*")
    return found


def section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">.*?</section>', page, re.S)
    assert found, name
    return found.group(0)


def page_of(folder) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


def test_the_bag_holds_the_policy_file_byte_for_byte_and_stock_tools_cover_it(bag):
    example = run_support.example_policy().read_bytes()
    copy = bag / layout.POLICY
    info = (bag / layout.BAG_INFO).read_text()

    assert copy.read_bytes() == example
    assert f"Policy-SHA256: {hashlib.sha256(example).hexdigest()}" in info
    assert (
        f"{hashlib.sha256(example).hexdigest()}  {layout.POLICY}"
        in (bag / layout.MANIFEST).read_text()
    )
    checked = subprocess.run(
        ["sha256sum", "-c", layout.MANIFEST], cwd=bag, capture_output=True, text=True
    )
    assert checked.returncode == 0 and f"{layout.POLICY}: OK" in checked.stdout


def test_the_page_explains_every_rule_hold_list_and_detector_of_the_policy(bag):
    policy = load_policy(run_support.example_policy())
    page = page_of(bag / layout.REPORT)
    shown = section(page, "policy")

    assert policy.name and policy.name in shown
    assert policy.description.split()[0] in shown
    assert policy.floor is not None and policy.floor_basis in shown
    for rule in policy.retention_rules():
        row = re.search(
            rf'<tr id="(policy-\d+)"><td class="mono">{re.escape(rule.id)}</td>.*', shown
        )
        assert row, rule.id
        assert rule.keep_for.words() in row.group(0) and rule.description in row.group(0)
    for hold in policy.holds:
        assert hold.id in shown and hold.reason.split(";")[0] in shown
    for listed in policy.keyword_lists:
        row = re.search(rf"<td class=\"mono\">{re.escape(listed.id)}</td>.*", shown).group(0)
        assert f'<td class="num">{len(listed.terms)}</td>' in row and listed.description in row
        assert not any(term.text in row for term in listed.terms)
    for rule in policy.detectors:
        row = re.search(rf'<td class="mono">{rule.id}</td>.*', shown).group(0)
        # resident_id, email and url never lower a match: their own check confirms each one
        confirmed = rule.detector in ("resident_id", "email", "url")
        assert ("its own check confirms every match" in row) == confirmed, row
        assert ("one level lower" in row) != confirmed, row
    assert "<code>groupchat</code>" in shown and "<code>140254120679?</code>" in shown


def test_each_rule_in_the_summary_tables_links_to_its_row(bag):
    page = page_of(bag / layout.REPORT)
    shown = section(page, "policy")
    summary = section(page, "summary")
    links = re.findall(r'<a href="#(policy-\d+)">([^<]+)</a>', summary)

    assert {"default", "zh-misconduct", "matter-2026-017"} <= {rule for _a, rule in links}
    for anchor, rule in links:
        assert re.search(rf'<tr id="{anchor}"><td class="mono">{re.escape(rule)}</td>', shown)
    assert "no-timestamp" not in {rule for _a, rule in links}


def test_a_re_render_from_the_bag_alone_explains_it_the_same_way(bag, tmp_path):
    render_bag(bag, tmp_path / "again")
    again = page_of(tmp_path / "again")
    ran = page_of(bag / layout.REPORT)

    assert section(again, "policy") == section(ran, "policy")
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    ran_summary = json.loads((bag / layout.REPORT / "summary.json").read_text())
    assert summary["policy"] == ran_summary["policy"]
    assert summary["policy"]["name"] == "Demo compliance policy"


def test_a_bag_without_a_copy_says_so_and_its_summary_names_no_policy(bag, tmp_path):
    older = tmp_path / bag.name
    shutil.copytree(bag, older)
    (older / layout.POLICY).unlink()

    render_bag(older, tmp_path / "again")

    shown = section(page_of(tmp_path / "again"), "policy")
    assert 'id="policy-missing"' in shown and "<table" not in shown
    assert (
        '"name"' not in (tmp_path / "again" / "summary.json").read_text().split('"policy"')[1][:200]
    )


def test_a_copy_that_is_not_the_named_policy_is_refused_by_the_page_and_by_verify(
    bag, keys, tmp_path
):
    forged = tmp_path / bag.name
    shutil.copytree(bag, forged)
    copy = forged / layout.POLICY
    copy.write_bytes(copy.read_bytes().replace(b"keep_for: 3y", b"keep_for: 30d"))
    recompute_manifests(forged, update_root=False)
    signed = sign(
        load_signing_key(keys.private_key),
        (forged / layout.TAGMANIFEST).read_bytes(),
        layout.DEFAULT_NAMESPACE,
    )
    (forged / layout.SIGNATURE).write_bytes(signed.raw)
    (forged / layout.SSH_SIGNATURE).write_text(signed.ssh)

    render_bag(forged, tmp_path / "again")
    report = verify_bag(forged, load_public_key(keys.public_key))

    shown = section(page_of(tmp_path / "again"), "policy")
    assert 'id="policy-problem"' in shown and "finance-groups" not in shown
    assert [str(problem) for problem in report.problems] == [
        f"{forged.name}/{layout.POLICY}: is not the policy file Policy-SHA256 names "
        f"({hashlib.sha256(run_support.example_policy().read_bytes()).hexdigest()})"
    ]


def test_a_policy_file_saved_during_the_run_stops_it_with_exit_2_and_no_bag(
    emulator, keys, tmp_path, monkeypatch
):
    policy = tmp_path / "policies.yaml"
    shutil.copy(run_support.example_policy(), policy)
    read = stages.load_policy

    def saved_meanwhile(path):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("# edited while the run went on\n")
        return read(path)

    monkeypatch.setattr(stages, "load_policy", saved_meanwhile)
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", hours=2)
    args[args.index("--policies") + 1] = str(policy)

    result = invoke(args)

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "the policy file changed after the run began" in result.stderr
    assert str(policy) in result.stderr
    assert not list((tmp_path / "archive").glob("run-*"))


def test_a_worker_refuses_a_policy_other_than_the_runs(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="changed after the run began"):
        run_support.stage_processor(tmp_path, monkeypatch, source=None, policy_sha256="0" * 64)
    expected = load_policy(run_support.example_policy()).sha256
    processor = run_support.stage_processor(
        tmp_path, monkeypatch, source=None, policy_sha256=expected
    )
    assert processor.engine.policy.sha256 == expected
