"""A local Easemob-compatible server with a deterministic synthetic history and fault injection."""
