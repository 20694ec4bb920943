"""The ZeroMQ context policy: one context per process, made here, closed once by its entry.

Every socket vadmon opens comes from ``process_context()``; whoever opens a socket closes it
(with its bounded LINGER, ``runtime.transport.SocketLimits``); the process's entry closes the
context last with ``close_process_context()`` (``runtime/entry.process_main`` for capture,
inference and alerts, ``vadmon.cli.main`` for commands, ``python -m vadmon.web``).

Why one shared context and not one per loop passed down: a process's sockets are opened in many
places (the loop, its heartbeat sender, the model-loading beats, the verdict back-channel), and
one context per process is what ZeroMQ intends (its I/O thread serves them all). Threading a
context argument through each of them adds a parameter everywhere and still leaves "who terms
it?" to each caller; a loop that terms its own context (what ``run_capture`` and
``run_inference`` did) breaks any other socket of the same interpreter, e.g. a test driving
``run_alerts`` in a thread beside its own publisher. So: get it here, never terminate it
except at the process's exit, where ``close_process_context`` closes any socket still open with
a bounded linger, so an unsent message to a dead peer can never hang the exit.
"""

from __future__ import annotations

import threading

import zmq

from vadmon.runtime.limits import CONTEXT_CLOSE_LINGER_MS

_lock = threading.Lock()
_context: zmq.Context | None = None


def process_context() -> zmq.Context:
    """This process's one context, made on first use (a closed one is replaced: a second
    ``main`` in the same interpreter, as tests run it, starts afresh)."""
    global _context
    with _lock:
        if _context is None or _context.closed:
            _context = zmq.Context()
        return _context


def close_process_context(linger_ms: int = CONTEXT_CLOSE_LINGER_MS) -> None:
    """At the process's exit: close what is still open (linger bounded) and terminate; a no-op
    when nothing made a context. Only the process's entry calls this, after its loop ended."""
    global _context
    with _lock:
        ctx, _context = _context, None
    if ctx is not None and not ctx.closed:
        ctx.destroy(linger=linger_ms)
