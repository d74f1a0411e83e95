"""Per-agent permissions, enforced at every tool call."""
