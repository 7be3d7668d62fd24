"""Where raw records come from: Easemob's hour files, its legacy `ql` API, or local files.

`interface.Source` is the one plug (`fetch(partition) -> PartitionResult`); `hourfiles`, `legacy`
and `local` implement it, `settle` holds the shared window/dedup/order rules, `easemob` the REST
client (token, retries, errors), `settings` the connection settings and `make_source`, and `pull`
the resumable `auditor pull`.
"""
