"""The loops' fixed numbers, named in one place: bounds and waits that have no config key.

Each is a design choice (memory bound, latency, a peer's patience), not a user setting; changing
one is a code change with its measurement. Values the composition root passes through settings
(heartbeat cadence, socket HWMs per camera, event and delivery tuning) are named in
``vadmon/settings.py``; these are the ones the process loops use directly, so a reader finds
every magic number of capture → inference → alerts here instead of inline.
"""

from __future__ import annotations

MiB = 1024 * 1024

# --- every process ---------------------------------------------------------------------------
# at exit, a socket still open waits this long for its unsent messages (runtime/zmq_context)
CONTEXT_CLOSE_LINGER_MS = 200

# --- capture ---------------------------------------------------------------------------------
# kernel buffer of the snippet PUSH: small, so a stopped consumer shows up as counted drops
# instead of hundreds of snippets queued by the OS
SNIPPET_KERNEL_BUFFER_BYTES = 16384

# --- inference -------------------------------------------------------------------------------
SCORE_PUB_HWM = 64  # scores queued per slow subscriber before it loses the oldest
FIRST_SNIPPET_WAIT_MS = 200  # one idle poll: the loop still beats and flushes quiet cameras
GATHER_BATCHES = 4  # snippets gathered per step: up to batch_max × this, then admission picks
MAX_WAITING = 1024  # fed snippets per camera awaiting their score: above any window + lookahead
# recent scores carried per heartbeat: this many in all, split over the cameras (≥ the minimum
# each), so a beat stays far below heartbeat.MAX_BYTES however many cameras there are
BEAT_SCORES_BUDGET = 6000
BEAT_SCORES_MIN = 8

# --- alerts ----------------------------------------------------------------------------------
ALERT_POLL_MS = 100  # longest idle wait: event timers and the heartbeat tick at least this often
ALERT_BATCH = 500  # messages taken per poll before the loop ticks (timers, heartbeat)
ALERT_SUB_HWM = 10_000  # every camera's scores queue here while a tick writes the outbox
ALERT_SUB_MAX_MSG_BYTES = 16 * MiB  # a preview JPEG is far below this
RECENT_MESSAGES = 40  # event messages kept for the heartbeat's recent events (newest per id)
NARRATIVES_KEPT = 256  # finished narrations kept to attach to an event's later messages
HELD_MEDIA_REFRESH_S = 1.0  # how often media of still-pending webhooks is re-read (retention)
DNS_TIMEOUT_S = 5.0  # one webhook host lookup; a slower resolver counts as a network failure
