"""Decides whether and how a request reuses a cached one: the prompt diff, the edit kind, the plan."""
