"""Cron jobs that really fire."""
