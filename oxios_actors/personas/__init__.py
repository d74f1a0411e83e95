"""Personas: who the orchestrator and its agents speak as."""
