"""Agents: one actor (one OS process) per agent."""
