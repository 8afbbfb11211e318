"""Lingxi's assistant core: settings, storage, providers and the agent loop."""
