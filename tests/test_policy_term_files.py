"""Keyword terms read from term files (`terms_file:`, `allow_file:`), archived with the policy.

Sensitive-word lists arrive as text files of up to 200,000 lines, updated by someone else. A run
reads each once, applies it, and keeps it byte for byte in its bag, named with its SHA-256 in the
signed bag-info, so legal checks it with sha256sum; everything that reloads the bag's policy
reads those copies, never the live files, which may have changed since.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner
from test_archive_support import recompute_manifests

from auditor import stages
from auditor.archive import layout
from auditor.archive.baginfo import parse_bag_info
from auditor.archive.keys import generate_key_files, load_signing_key
from auditor.archive.publickey import load_public_key
from auditor.archive.signing import sign
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.errors import ConfigError
from auditor.policies.loading import load_policy
from auditor.policies.term_files import applied_sha256_in_info
from auditor.report.bag import render_bag

SECRET = "term-files-secret"
# A vendor's list as it comes: a BOM, a comment, blank lines, terms with spaces around them.
VENDOR = "\ufeff# vendor list 2026-11\n\n  内幕消息  \n洗钱\r\n\n# end\n".encode()
ARCHIVED = "data/policy/keywords-2-vendor-zh.terms.txt"
EXTRA_LIST = """
  - id: vendor-zh
    description: The vendor's list
    severity: medium
    terms: [回扣]
    terms_file: lists/vendor.txt
"""


def invoke(args: list[str]):
    return CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})


def policy_with_term_file(folder: Path, terms: bytes = VENDOR, extra: str = EXTRA_LIST) -> Path:
    """The example policy with one more keyword list whose terms come from `lists/vendor.txt`."""
    (folder / "lists").mkdir(parents=True, exist_ok=True)
    (folder / "lists" / "vendor.txt").write_bytes(terms)
    text = run_support.example_policy().read_text(encoding="utf-8")
    head, tail = text.split("\ndetectors:\n", 1)
    policy = folder / "policies.yaml"
    policy.write_text(f"{head}{extra}\ndetectors:\n{tail}", encoding="utf-8")
    return policy


def run_args(emulator, keys, folder: Path, policy: Path, *extra: str) -> list[str]:
    args = run_support.run_args(emulator, keys, folder, *extra, hours=6)
    args[args.index("--policies") + 1] = str(policy)
    return args


emulator = run_support.emulator_fixture(SECRET, messages=600)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


@pytest.fixture(scope="module")
def ran(emulator, keys, tmp_path_factory):
    """A run whose policy reads a term file: (bag, policy file, run folder)."""
    folder = tmp_path_factory.mktemp("term-files")
    policy = policy_with_term_file(folder / "policy")
    result = invoke(run_args(emulator, keys, folder, policy, "--json"))
    assert result.exit_code in (0, 1), result.output
    (bag,) = (folder / "archive").glob("run-*")
    return bag, policy, folder


def bag_info(bag: Path) -> dict[str, str]:
    info, _problems = parse_bag_info((bag / layout.BAG_INFO).read_bytes(), layout.BAG_INFO)
    return info


def section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">.*?</section>', page, re.S)
    assert found, name
    return found.group(0)


def vendor_findings(bag: Path) -> list[dict]:
    """The findings of terms the term file gave (not the list's inline 回扣)."""
    lines = (bag / layout.FINDINGS).read_bytes().splitlines()
    return [
        finding
        for finding in map(json.loads, lines)
        if finding.get("details", {}).get("list") == "vendor-zh"
        and finding["details"].get("listed_term") in ("内幕消息", "洗钱")
    ]


def test_term_file_reading_rules_and_union_with_inline_terms(tmp_path):
    policy = load_policy(policy_with_term_file(tmp_path))
    (vendor,) = [each for each in policy.keyword_lists if each.id == "vendor-zh"]

    assert [(term.text, term.line, term.file) for term in vendor.terms] == [
        ("回扣", vendor.line + 3, ""),
        ("内幕消息", 3, str(tmp_path / "lists" / "vendor.txt")),
        ("洗钱", 4, str(tmp_path / "lists" / "vendor.txt")),
    ]
    (archived,) = policy.term_files
    assert archived.archived == ARCHIVED
    assert archived.sha256 == hashlib.sha256(VENDOR).hexdigest()
    assert archived.raw == VENDOR and archived.terms == 2
    assert policy.applied_sha256 not in (policy.sha256, archived.sha256)


def test_the_run_applies_the_term_file_and_the_bag_holds_it_byte_for_byte(ran):
    bag, _policy, _folder = ran
    info = (bag / layout.BAG_INFO).read_text()
    digest = hashlib.sha256(VENDOR).hexdigest()

    assert (bag / ARCHIVED).read_bytes() == VENDOR
    assert f"Policy-Term-File-1: {digest}  {ARCHIVED}\n" in info
    assert f"{digest}  {ARCHIVED}\n" in (bag / layout.MANIFEST).read_text()
    assert vendor_findings(bag), "the term file's terms found nothing"
    verify_txt = (bag / layout.VERIFY_TXT).read_text()
    assert f"{digest}  {ARCHIVED}" in verify_txt
    assert "grep '^Policy-Term-File-' bag-info.txt | cut -d' ' -f2- | sha256sum -c" in verify_txt


def test_stock_tools_and_auditor_verify_check_the_term_file(ran, keys):
    bag, _policy, _folder = ran
    openssl = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(keys.public_key), "-rawin",
         "-in", layout.TAGMANIFEST, "-sigfile", layout.SIGNATURE],
        cwd=bag, capture_output=True, text=True,
    )  # fmt: skip
    assert openssl.returncode == 0, openssl.stdout + openssl.stderr
    stock = subprocess.run(
        ["bash", "-c",
         "sha256sum -c tagmanifest-sha256.txt >/dev/null && "
         "grep '^Policy-Term-File-' bag-info.txt | cut -d' ' -f2- | sha256sum -c"],
        cwd=bag, capture_output=True, text=True,
    )  # fmt: skip
    assert stock.returncode == 0, stock.stderr
    assert stock.stdout == f"{ARCHIVED}: OK\n"
    result = invoke(["verify", str(bag), "--pubkey", str(keys.public_key)])
    assert result.exit_code == 0, result.output


def test_a_tampered_archived_term_file_fails_verify(ran, keys, tmp_path):
    bag, _policy, _folder = ran
    copy = tmp_path / bag.name
    shutil.copytree(bag, copy)
    (copy / ARCHIVED).write_bytes(VENDOR.replace("洗钱".encode(), "洗衣".encode()))

    result = invoke(["verify", str(copy), "--pubkey", str(keys.public_key)])

    assert result.exit_code == 1
    assert f"{ARCHIVED}: its SHA-256 does not match manifest-sha256.txt (changed)" in result.output
    stock = subprocess.run(
        ["bash", "-c", "grep '^Policy-Term-File-' bag-info.txt | cut -d' ' -f2- | sha256sum -c"],
        cwd=copy, capture_output=True, text=True,
    )  # fmt: skip
    assert stock.returncode == 1 and "FAILED" in stock.stdout


def test_a_term_file_swapped_and_the_manifests_resigned_is_named_by_verify(ran, keys, tmp_path):
    """One who holds the key and edits the list, manifests and all, still cannot make the bag
    agree with the digest bag-info named when the run signed it, without editing that too."""
    bag, _policy, _folder = ran
    copy = tmp_path / bag.name
    shutil.copytree(bag, copy)
    (copy / ARCHIVED).write_bytes(b"nothing\n")
    recompute_manifests(copy, update_root=False)
    tagmanifest = (copy / layout.TAGMANIFEST).read_bytes()
    signed = sign(load_signing_key(keys.private_key), tagmanifest, layout.DEFAULT_NAMESPACE)
    (copy / layout.SIGNATURE).write_bytes(signed.raw)

    report = verify_bag(copy, load_public_key(keys.public_key))

    named = hashlib.sha256(VENDOR).hexdigest()
    assert f"{copy.name}/{ARCHIVED}: is not the term file Policy-Term-File-1 names ({named})" in [
        str(problem) for problem in report.problems
    ]


def test_a_re_render_after_the_live_file_changed_shows_the_archived_terms(ran, tmp_path):
    bag, policy, _folder = ran
    live = policy.parent / "lists" / "vendor.txt"
    live.write_bytes(b"\xff not even text\n")  # the vendor's next list, or a broken one
    try:
        rendered = render_bag(bag, tmp_path / "out")
        page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
        csv = (tmp_path / "out" / "findings.csv").read_text(encoding="utf-8-sig")
    finally:
        live.write_bytes(VENDOR)

    assert rendered.summary["findings"]["total"] > 0
    assert "vendor-zh" in csv and "内幕消息" in csv
    assert 'id="policy-term-files"' in page
    assert hashlib.sha256(VENDOR).hexdigest() in page
    assert ARCHIVED in page
    assert "policy-problem" not in page
    assert section(page, "policy") == section(
        (bag / layout.REPORT / "report.html").read_text(encoding="utf-8"), "policy"
    )


def test_state_rebuild_reads_the_bags_term_files_not_the_live_ones(ran, keys, tmp_path):
    bag, policy, _folder = ran
    live = policy.parent / "lists" / "vendor.txt"
    live.unlink()
    try:
        result = invoke(
            ["state", "rebuild", "--out", str(bag.parent), "--state", str(tmp_path / "new.db"),
             "--pubkey", str(keys.public_key)]
        )  # fmt: skip
    finally:
        live.write_bytes(VENDOR)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("content", "declared", "expected"),
    [
        (None, "lists/missing.txt", "policies.yaml:{line}: keywords[2].terms_file: "
         "{folder}/lists/missing.txt: no such term file"),
        (b"ok\n\xff\xfe\n", "lists/vendor.txt", "policies.yaml:{line}: keywords[2].terms_file: "
         "{folder}/lists/vendor.txt:2: not UTF-8 text (byte 3)"),
        ("fine\n\u200b\u200c\n".encode(), "lists/vendor.txt", "{folder}/lists/vendor.txt:2: term "
         "'\\u200b\\u200c' is empty once normalised (spaces, separators and zero-width characters "
         "are removed) (the keywords[2].terms_file of {folder}/policies.yaml)"),
        (b"x\n", "lists", "policies.yaml:{line}: keywords[2].terms_file: {folder}/lists: is a "
         "folder, not a regular file, so not a term file"),
    ],
)  # fmt: skip
def test_a_bad_term_file_is_one_line_and_exit_2(tmp_path, content, declared, expected):
    extra = EXTRA_LIST.replace("lists/vendor.txt", declared)
    policy = policy_with_term_file(tmp_path, extra=extra)
    if content is None:
        (tmp_path / "lists" / "vendor.txt").unlink()
    else:
        (tmp_path / "lists" / "vendor.txt").write_bytes(content)
    line = policy.read_text(encoding="utf-8").splitlines().index(f"    terms_file: {declared}") + 1

    result = invoke(["policy", "check", str(policy)])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    message = expected.format(folder=tmp_path, line=line)
    if message.startswith("policies.yaml"):
        message = f"{tmp_path}/{message}"
    assert result.stderr == f"auditor: error: {message}\n"


def test_a_run_with_a_missing_term_file_stops_before_anything_with_exit_2(emulator, keys, tmp_path):
    policy = policy_with_term_file(tmp_path / "policy")
    (policy.parent / "lists" / "vendor.txt").unlink()

    result = invoke(run_args(emulator, keys, tmp_path, policy))

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no such term file" in result.stderr
    assert not (tmp_path / "state.db").exists() or not list((tmp_path / "archive").glob("run-*"))


def test_a_term_file_saved_during_the_run_stops_it_with_exit_2_and_no_bag(
    emulator, keys, tmp_path, monkeypatch
):
    policy = policy_with_term_file(tmp_path / "policy")
    read = stages.load_policy

    def saved_meanwhile(path):
        with open(policy.parent / "lists" / "vendor.txt", "ab") as handle:
            handle.write("代开发票\n".encode())
        return read(path)

    monkeypatch.setattr(stages, "load_policy", saved_meanwhile)

    result = invoke(run_args(emulator, keys, tmp_path, policy, "--workers", "1"))

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "the term file 'lists/vendor.txt' of keyword list vendor-zh" in result.stderr
    assert "changed after the run began" in result.stderr
    assert not list((tmp_path / "archive").glob("run-*"))


def test_a_worker_refuses_term_files_other_than_the_runs(tmp_path, monkeypatch):
    policy = policy_with_term_file(tmp_path / "policy")
    loaded = load_policy(policy)
    began = tuple((each.archived, each.sha256) for each in loaded.term_files)
    stale = tuple((archived, "0" * 64) for archived, _digest in began)

    with pytest.raises(ConfigError, match=r"term file 'lists/vendor\.txt'.*changed after"):
        run_support.stage_processor(
            tmp_path, monkeypatch, source=None, policy_path=str(policy),
            policy_sha256=loaded.sha256, term_files_sha256=stale,
        )  # fmt: skip
    processor = run_support.stage_processor(
        tmp_path, monkeypatch, source=None, policy_path=str(policy),
        policy_sha256=loaded.sha256, term_files_sha256=began,
    )  # fmt: skip
    assert processor.engine.policy.term_files[0].sha256 == began[0][1]


def test_a_changed_term_file_makes_another_run_not_already_done(emulator, keys, tmp_path):
    """The run's identity covers the term files: the same window with another list is audited
    again (a killed run's spooled hours, judged by the old list, are not reused)."""
    policy = policy_with_term_file(tmp_path / "policy")
    first = invoke(run_args(emulator, keys, tmp_path, policy, "--json"))
    assert first.exit_code in (0, 1), first.output
    again = invoke(run_args(emulator, keys, tmp_path, policy, "--json"))
    assert json.loads(again.stdout)["already_done"] is True
    (policy.parent / "lists" / "vendor.txt").write_bytes(VENDOR + "代开发票\n".encode())

    changed = invoke(run_args(emulator, keys, tmp_path, policy, "--json"))

    assert changed.exit_code in (0, 1), changed.output
    outcome = json.loads(changed.stdout)
    assert outcome["already_done"] is False
    # the same policy file with another list is another policy: the run says so, naming digests
    # over the policy file and its term files, as the earlier run's state and bag-info give them
    (first_bag, changed_bag) = sorted((tmp_path / "archive").glob("run-*"))
    before = load_policy(policy).sha256
    assert outcome["policy_changed_from"] == applied_sha256_in_info(bag_info(first_bag))
    assert outcome["policy_changed_from"] != before
    (finding,) = [
        each
        for each in map(json.loads, (changed_bag / layout.FINDINGS).read_bytes().splitlines())
        if each["rule"] == "policy-changed"
    ]
    assert finding["details"] == {
        "previous_policy_sha256": outcome["policy_changed_from"],
        "policy_sha256": applied_sha256_in_info(bag_info(changed_bag)),
    }
    assert "term list" in finding["message"]
    summary = json.loads((changed_bag / layout.REPORT / "summary.json").read_text())
    assert summary["policy"]["term_files"] == [
        {"file": ARCHIVED, "sha256": hashlib.sha256(VENDOR + "代开发票\n".encode()).hexdigest()}
    ]
    # a state rebuilt from the bags keeps the same digests: its next run still compares alike
    rebuilt = tmp_path / "rebuilt.db"
    assert invoke(
        ["state", "rebuild", "--out", str(tmp_path / "archive"), "--state", str(rebuilt),
         "--pubkey", str(keys.public_key)]
    ).exit_code == 0  # fmt: skip
    shown = invoke(["state", "show", "--state", str(rebuilt), "--format", "json"])
    digests = [run["policy_sha256"] for run in json.loads(shown.stdout)["runs"]]
    assert digests == [outcome["policy_changed_from"], finding["details"]["policy_sha256"]]


def test_scan_of_a_bag_with_its_own_policy_copy_reads_the_archived_term_file(ran, tmp_path):
    """`auditor scan --policies BAG/data/policy.yaml BAG` judges by the archived list: the live
    file may be gone, and `lists/vendor.txt` beside the copy never existed."""
    bag, policy, _folder = ran
    live = policy.parent / "lists" / "vendor.txt"
    live.unlink()
    try:
        result = invoke(
            ["scan", "--policies", str(bag / layout.POLICY), str(bag), "--findings",
             str(tmp_path / "found.jsonl")]
        )  # fmt: skip
    finally:
        live.write_bytes(VENDOR)

    assert result.exit_code in (0, 1), result.output
    found = [json.loads(line) for line in (tmp_path / "found.jsonl").read_bytes().splitlines()]
    assert {"内幕消息", "洗钱"} & {
        each["details"].get("listed_term") for each in found if each["category"] == "keyword"
    }
