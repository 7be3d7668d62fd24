"""Names inside a run's bag: files, folders, `bag-info.txt` labels; shared by writer and verifier.

Only names live here, no behaviour, so the verifier can depend on this module without depending on
anything the writer computes.
"""

from __future__ import annotations

import re

BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
SIGNATURE = "tagmanifest-sha256.txt.sig"
SSH_SIGNATURE = "tagmanifest-sha256.txt.sshsig"
TAG_FILES = (BAGIT_TXT, BAG_INFO, MANIFEST)
ROOT_FILES = (*TAG_FILES, TAGMANIFEST, SIGNATURE, SSH_SIGNATURE)

DATA = "data"
RECORDS = "data/records"
RECORDS_SUFFIX = ".jsonl"
UNREADABLE = "data/unreadable"  # what a run kept verbatim: served garbage, records without RFC 8785
ATTACHMENTS = "data/attachments/sha256"
ATTACHMENT_INDEX = "data/attachments.jsonl"
FINDINGS = "data/findings.jsonl"
VERIFY_TXT = "data/VERIFY.txt"
POLICY = "data/policy.yaml"  # the policy file the run applied, byte for byte (its Policy-SHA256)
# The term files its keyword lists name (`terms_file`, `allow_file`), byte for byte, each named
# with its SHA-256 by a bag-info label `Policy-Term-File-N` (from 1), a sha256sum line.
POLICY_FOLDER = "data/policy"
POLICY_TERM_FILE = "Policy-Term-File-"
REPORT = "data/report"  # the report a run renders, beside the findings it links
RESERVED_PAYLOAD = (RECORDS, "data/attachments", ATTACHMENT_INDEX, FINDINGS, VERIFY_TXT)

BAGIT_TXT_CONTENT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
DEFAULT_NAMESPACE = "easemob-auditor"
ZERO_HASH = "0" * 64
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"
# The run spools its hours here, inside the folder of runs, and removes each run's spool once done.
SPOOL_FOLDER = ".work"

# bag-info.txt labels the auditor writes and the verifier checks.
SOFTWARE = "Bag-Software-Agent"
# The bag's format: the files, labels and line form it holds, numbered from 1 whenever they
# change in a way an older verifier would misread. Bag-Software-Agent cannot tell formats apart
# (every version wrote "easemob-auditor 0.1.0"). A bag without this label was written before
# formats were numbered and is read as format 1: each part it holds is checked as today.
FORMAT = "Auditor-Bag-Format"
FORMAT_VERSION = 1
BAGGING_DATE = "Bagging-Date"
PAYLOAD_OXUM = "Payload-Oxum"
SEQUENCE = "Run-Sequence"
PREVIOUS = "Previous-Tagmanifest-SHA256"
# How many hours of the window the source no longer served, and between which instants.
HOURS_LOST = "Hours-Lost"
RECORD_COUNT = "Record-Count"
PARTITION_COUNT = "Partition-Count"
ATTACHMENTS_MODE = "Attachments"
ATTACHMENTS_SKIPPED = "Attachments-Skipped"
ATTACHMENT_COUNT = "Attachment-Count"
ATTACHMENT_FILE_COUNT = "Attachment-File-Count"
FINDINGS_COUNT = "Findings-Count"
TREE_SIZE = "Merkle-Tree-Size"
MERKLE_ROOT = "Merkle-Root"
MERKLE_HASHING = "Merkle-Tree-Hashing"
LINE_FORMAT = "Line-Format"
NAMESPACE = "Signature-Namespace"
FINGERPRINT = "Signing-Key-Fingerprint"
# Labels the verifier requires; `Attachments-Skipped` (the reason) appears only when skipped.
AUDITOR_LABELS = (
    SOFTWARE,
    BAGGING_DATE,
    PAYLOAD_OXUM,
    SEQUENCE,
    PREVIOUS,
    RECORD_COUNT,
    PARTITION_COUNT,
    ATTACHMENTS_MODE,
    ATTACHMENT_COUNT,
    ATTACHMENT_FILE_COUNT,
    FINDINGS_COUNT,
    TREE_SIZE,
    MERKLE_ROOT,
    MERKLE_HASHING,
    LINE_FORMAT,
    NAMESPACE,
    FINGERPRINT,
)
RESERVED_LABELS = (*AUDITOR_LABELS, ATTACHMENTS_SKIPPED, FORMAT)
MERKLE_HASHING_TEXT = "RFC 6962 SHA-256, leaf = SHA-256(0x00 || line without its newline)"
LINE_FORMAT_TEXT = 'RFC 8785 JSON of {"record", "salt", "seq"}, one per line, LF'

HEX64 = re.compile(r"[0-9a-f]{64}")
SALT = re.compile(r"[0-9a-f]{32}")
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
INFO_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PAYLOAD_PATH = re.compile(r"data/(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*")
