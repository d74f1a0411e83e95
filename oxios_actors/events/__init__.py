"""The durable, ordered event log (DESIGN rule 5)."""
