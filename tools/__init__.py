"""Lingxi's tools: plain typed functions the agent can call (see tools.builtin for the list)."""
