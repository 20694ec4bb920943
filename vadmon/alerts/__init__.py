"""Alerts process: scores → events (snapshot, clip) → durable outbox → signed webhooks."""
