"""The signed, hash-chained archive: one BagIt bag per run that legal verifies with stock tools.

Writer side: `bag` (BagWriter, publish_bag), `lines` (a record's archived line: canonical bytes,
salt, seq), `keys` (keygen, loading, the salt secret), `signing`. Verifier side, which imports
nothing of the writer: `verify`, `chain`, `proof`, with `baginfo` and `problems`. Shared,
behaviour-free or pure: `layout` (names), `canonical` (RFC 8785), `merkle` (RFC 6962),
`sshsig` (OpenSSH's signature format), `publickey`, `instructions` (the text of VERIFY.txt).

Nothing is imported here, so `import auditor.archive.verify` loads no writer code.
"""
