"""Compliance auditor for Easemob (环信) chat history."""

__version__ = "0.1.0"
