"""Capture process (one per camera): source → watchdog → shared-memory ring → snippets."""
