"""The ``web`` process: JSON API, media (snapshots, clips, live previews) and the review page.

``options`` (settings, no web imports) is what ``vadmon.settings`` builds; ``server`` runs the
app under uvicorn; ``app`` wires the routes of ``api``, ``media_routes`` and ``pages``.
"""
