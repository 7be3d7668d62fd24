"""The text of `data/VERIFY.txt`: the stock commands that check one bag, its names filled in."""

from __future__ import annotations

from auditor.archive import layout


def verify_text(
    name: str,
    sequence: int,
    previous_sha256: str,
    namespace: str,
    fingerprint: str,
    record_count: int,
    merkle_root: str,
    previous_name: str | None = None,
    term_files: tuple[str, ...] = (),
) -> str:
    """`previous_name` is the folder of the run this one links to, beside it, when known;
    `term_files` the values of bag-info's `Policy-Term-File-N` labels (`<sha256>  <path>`)."""
    first = previous_sha256 == layout.ZERO_HASH
    previous = f"../{previous_name or '<previous run>'}"
    replayed = (
        "   Each run of a chain has its own number, so this must print nothing (a line it prints\n"
        "   is a number that two bags beside this one hold: a run copied under another name):\n\n"
        f"     grep -h '^{layout.SEQUENCE}:' ../*/{layout.BAG_INFO} | sort | uniq -d"
    )
    link = (
        f"This is the first run of its chain: its {layout.BAG_INFO} has\n"
        f"   {layout.PREVIOUS} of 64 zeros.\n\n{replayed}"
        if first
        else (
            f"This run is number {sequence}. Its {layout.BAG_INFO} names the\n"
            f"   SHA-256 of the {layout.TAGMANIFEST} of the previous run (number {sequence - 1});\n"
            "   the second command must print OK:\n\n"
            f"     grep {layout.PREVIOUS} {layout.BAG_INFO}\n"
            f"     echo '{previous_sha256}  {previous}/{layout.TAGMANIFEST}' | sha256sum -c\n\n"
            "   Verify that run in its own folder too (steps 1 and 2 of its VERIFY.txt): this"
            f"\n   step shows only that this run names it.\n\n{replayed}"
        )
    )
    previous_option = "" if first else f" --previous {previous}"
    label = layout.POLICY_TERM_FILE
    term_step = (
        f"""
4. The term files of the policy. Its keyword lists read terms from {len(term_files)} text file(s),
   which {layout.POLICY_FOLDER}/ holds byte for byte; bag-info.txt (signed in step 1) names each
   with its SHA-256, as {label}1, {label}2, ...:

{chr(10).join(f"     {label}{n}: {line}" for n, line in enumerate(term_files, 1))}

   Each value is a sha256sum line: this must print OK for every file:

     grep '^{label}' {layout.BAG_INFO} | cut -d' ' -f2- | sha256sum -c
"""
        if term_files
        else ""
    )
    term_layout = (
        f"\n{layout.POLICY_FOLDER}/keywords-<n>-<list id>.<terms|allow>.txt are the term files its "
        "keyword lists name\n(terms_file, allow_file), byte for byte, one term a line."
        if term_files
        else ""
    )
    return f"""\
How to verify this archive with stock tools
===========================================

Archive: {name} (run {sequence}, {record_count} records, Merkle root {merkle_root})
Signed by the key with fingerprint {fingerprint}.

You need the auditor's public key, received separately from this archive: never use a key
that came with it, inside it or beside it (in the same zip, disk or mail), since whoever changed
the archive can sign it again with a key of their own and put that key there. Until step 1
succeeds, this file is no more trustworthy than the rest, fingerprint above included: it only
tells which of your keys to use. `auditor keygen` wrote the key as auditor-signing-key.pub.pem
(for openssl) and as a line of allowed_signers (for ssh-keygen). Open bash or zsh (the
commands use <(...) and $'...', which sh lacks) in the bag's top folder, {name}/, the one
holding bagit.txt (this file is in its data/ folder), and set these two to your own copies,
received apart from the archives (SIGNERS may list every key used):

  PUBKEY=/path/to/auditor-signing-key.pub.pem
  SIGNERS=/path/to/allowed_signers

0. Your keys are the auditor's: the first command prints the fingerprint of each key of
   SIGNERS, the second that of PUBKEY (which ssh-keygen cannot read), in the same form; each
   must be one the operator gave you by a channel other than the archives (a letter, a call):

     ssh-keygen -lf "$SIGNERS"
{_pem_fingerprint_command()}

1. The signature over the tag manifest. Either command proves it; whichever you run must
   succeed ("Signature Verified Successfully" / "Good ... signature"):

     openssl pkeyutl -verify -pubin -inkey "$PUBKEY" -rawin \\
       -in {layout.TAGMANIFEST} -sigfile {layout.SIGNATURE}

     ssh-keygen -Y verify -f "$SIGNERS" -n {namespace} -s {layout.SSH_SIGNATURE} \\
       -I "$(ssh-keygen -Y find-principals -f "$SIGNERS" -s {layout.SSH_SIGNATURE})" \\
       < {layout.TAGMANIFEST}

   The openssl command needs OpenSSL 3 (`openssl version`): older ones, and macOS's
   /usr/bin/openssl, which is LibreSSL, have no -rawin for Ed25519. Use OpenSSL 3 (on macOS
   from Homebrew) or the ssh-keygen command, which works there.

2. The tag files (bagit.txt, bag-info.txt, the payload manifest), then every payload file.
   Every line of the first must end in OK; the second prints only the files that fail (a
   bag may hold millions), and must end in "all payload files OK" (on macOS use
   `shasum -a 256 -c`):

     sha256sum -c {layout.TAGMANIFEST}
     sha256sum -c --quiet {layout.MANIFEST} && echo "all payload files OK"

   sha256sum checks only the files a manifest lists, so a file added to the bag (another
   records file, a second report) passes it unseen. This prints the name of every file in the
   bag that neither manifest lists, and must print nothing:

{_unlisted_files_command()}

   A folder added empty holds no file for that command to see, yet its name can carry a
   message. This prints every empty folder but the two the auditor makes even when it has
   nothing to put there ({layout.RECORDS}, {layout.ATTACHMENTS}), and must print nothing:

{_empty_folders_command()}

3. The link to the earlier runs. {link}
{term_step}
If a check fails, first rule out what copies do to files on their way (then check again):
- "Signature Verification Failure", "incorrect signature", "missing header" (ssh-keygen) or
  "FAILED" for a text file: see whether a copy changed its line ends (a Windows copy, a mail,
  `unzip -a`, FTP in ASCII mode), which this prints as a count of CRLF lines per file, 0 where
  none:

     grep -c $'\\r' tagmanifest-sha256.txt tagmanifest-sha256.txt.sshsig bag-info.txt \\
       manifest-sha256.txt data/VERIFY.txt

  Take a binary copy of the archive again, or turn CRLF back into LF in each file counted
  (`sed -i 's/\\r$//' FILE`, on macOS `sed -i '' ...`): a file that then passes was only converted.
- "Signature Verification Failure" from openssl alone (the ssh-keygen command may pass): a
  copy may have treated the binary signature as text. It is 64 bytes; this prints its size:

     wc -c < {layout.SIGNATURE}

  Take a binary copy of it again, or write its bytes back into sig.bin: with the first command
  where a mail or FTP in ASCII mode wrote each LF byte as CRLF, with the second where a mail
  client or an editor wrote its bytes from 0x80 on as UTF-8 (then the first on sig.bin if
  needed):

     perl -0777 -pe 's/\\r\\n/\\n/g' < {layout.SIGNATURE} > sig.bin
     iconv -f UTF-8 -t ISO-8859-1 < {layout.SIGNATURE} > sig.bin

  and run step 1's openssl command with -sigfile sig.bin. Only the key's holder can make 64
  bytes that verify, so a sig.bin that passes is the signature, only copied as text.
- "No principal matched" or "does not verify" with the key you hold: the bag was signed by
  another key, after a key rotation (ask the operator, out of band, for that key) or by
  someone else.
- Files such as .DS_Store, ._NAME, Thumbs.db or __MACOSX/, printed by the last two commands of
  step 2, were added by macOS or Windows on the way and prove nothing: delete them and run those
  again, which must then print nothing.
Anything that still fails after that means the archive is not what the auditor signed.

What the stock tools cannot see: whether the auditor wrote what it signed consistently: the
canonical form and order of each record line, the Merkle root over all lines (which `auditor
prove` relies on), and the sequence numbers across a series of runs. (A record changed, added,
removed or reordered changes its file's SHA-256, which step 2 checks.)
The auditor checks all of these with the same keys:

  auditor verify . --pubkey "$SIGNERS"{previous_option}
  auditor verify-chain .. --pubkey "$SIGNERS"

After a key rotation, SIGNERS lists every key (or give --pubkey once per key file): each run
verifies with the key that signed it, and verify-chain says which key signed which runs.

Layout: data/records/<hour>.jsonl holds one line per record, the RFC 8785 JSON of
{{"record": <as received>, "salt": <32 hex>, "seq": <leaf index>}}; the Merkle tree is RFC 6962
over SHA-256(0x00 || line). data/attachments/sha256/<hex> holds attachment bytes by content hash,
indexed by data/attachments.jsonl; data/findings.jsonl lists what the audit found, and
data/policy.yaml is the policy file it applied (bag-info.txt's Policy-SHA256).{term_layout}
`auditor prove <bag> <msg_id>` extracts one message with the proof that it belongs here.
"""


def _unlisted_files_command() -> str:
    """`comm` of every file under the bag against every name the manifests list (plus the tag
    manifest and its two signatures): stock on GNU and BSD, in bash and zsh, byte order (C) on
    both sides so any locale compares alike."""
    names = " ".join((layout.TAGMANIFEST, layout.SIGNATURE, layout.SSH_SIGNATURE))
    return (
        "     LC_ALL=C comm -23 <(find . ! -type d | cut -c3- | LC_ALL=C sort) "
        "<({ printf '%s\\n' \\\n"
        f"       {names}; \\\n"
        f"       cut -c67- {layout.TAGMANIFEST} {layout.MANIFEST}; }} | LC_ALL=C sort)"
    )


def _empty_folders_command() -> str:
    """`find -empty`, which GNU and BSD find both have, less the writer's own folders that a run
    without records or attachments leaves empty (`verify._WRITER_FOLDERS` allows the same),
    sorted in byte order (C) as the command before it."""
    return (
        f"     find . -type d -empty ! -path ./{layout.RECORDS} "
        f"! -path ./{layout.ATTACHMENTS} | cut -c3- | LC_ALL=C sort"
    )


def _pem_fingerprint_command() -> str:
    """OpenSSH's SHA256 fingerprint of the PEM key, with stock tools: SHA-256 of the SSH wire
    form (the length-prefixed "ssh-ed25519" and 32-byte key) in unpadded base64, since
    ssh-keygen (9.x) cannot import an Ed25519 PKCS#8 key to print it."""
    return (
        "     { printf '\\0\\0\\0\\013ssh-ed25519\\0\\0\\0\\040'; "
        'openssl pkey -pubin -in "$PUBKEY" \\\n'
        "       -outform DER | tail -c 32; } | openssl dgst -sha256 -binary | openssl base64 \\\n"
        "       | tr -d = | sed 's/^/SHA256:/'"
    )
