"""What a capture process is told: its settings, its endpoints, and the source they open.

Built by the composition root (``vadmon.settings``) from the validated config; the capture loop
(``vadmon.capture.process``) only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vadmon.capture.snippet import SnippetSettings
from vadmon.capture.source import FrameSource, open_source
from vadmon.capture.watchdog import WatchdogSettings
from vadmon.errors import VadmonError
from vadmon.runtime.link import LinkClient
from vadmon.runtime.transport import ipc_endpoint


@dataclass(frozen=True)
class CaptureEndpoints:
    publish: str  # PUB: preview / status
    snippets: str  # PUSH: snippet (bound ipc), or the tcp endpoint of ``link``
    link: LinkClient | None = None  # set: connect to a remote inference host, frames inline


@dataclass(frozen=True)
class CaptureSettings:
    camera: str
    # file path, rtsp://…, webcam index, or synthetic:… — may hold a password: not in repr
    source: str = field(repr=False)
    loop: bool
    realtime: bool  # files: pace at the source fps
    rtsp_transport: str  # tcp | udp
    open_timeout_ms: int
    read_timeout_ms: int
    ring_slots: int
    snippet: SnippetSettings
    watchdog: WatchdogSettings
    preview_fps: float
    preview_max_width: int
    preview_jpeg_quality: int
    status_interval_s: float
    pub_hwm: int
    snippet_hwm: int
    hold_snippets: int  # kept while no inference is connected (its model loading); 0: none
    endpoints: CaptureEndpoints  # where this camera publishes and sends its snippets


def capture_endpoints(directory: str | Path, camera: str) -> CaptureEndpoints:
    return CaptureEndpoints(
        publish=ipc_endpoint(directory, f"capture-{camera}"),
        snippets=ipc_endpoint(directory, f"snippets-{camera}"),
    )


def build_source(s: CaptureSettings) -> FrameSource:
    """The (unopened) source for these settings: where the camera's config keys take effect."""
    return open_source(
        s.source,
        loop=s.loop,
        realtime=s.realtime,
        rtsp_transport=s.rtsp_transport,
        open_timeout_ms=s.open_timeout_ms,
        read_timeout_ms=s.read_timeout_ms,
    )


def open_source_description(settings: CaptureSettings) -> str:
    try:
        return open_source(settings.source).description
    except ValueError as exc:
        raise VadmonError(
            str(exc), f"cameras.{settings.camera}.source", "give a file, URL or webcam index"
        ) from None
