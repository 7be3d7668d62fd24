"""The exit codes every command shares, as `auditor --help` and `auditor run --help` show them:
one table, so neither can fall behind README's "Exit codes"."""

EXIT_CODES_HELP = """\b
    0  done, nothing at or above --fail-on (or: verified intact)
    1  done with findings at or above --fail-on (or: verification found
       problems)
    2  bad usage, configuration, input file, policy file, term file or key,
       or a file or database it cannot write (disk full, permissions,
       damaged)
    3  the source failed after all retries, or has not written an hour of the
       window yet, or an hour was not done within --hour-timeout (progress
       kept: run again to resume)
    4  another run holds the lock on the state database, or another
       program has it open
   70  an internal error: a bug in the auditor (its line says whether a
       run's bag was published; else progress kept)
  130  interrupted by SIGINT (Ctrl-C); progress kept: run again to resume
  141  the reader of its output went away (a closed pipe, as in | head)
  143  terminated by SIGTERM (systemd, Kubernetes, kill); progress kept
"""
