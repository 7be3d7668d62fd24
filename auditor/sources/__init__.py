"""Where raw records come from: Easemob's hour files, its legacy `ql` API, or local files."""
