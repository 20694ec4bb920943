"""``transport.tcp.verdicts``: where the link's back-channel runs (see vadmon.runtime.link_verdict).

The inference host answers each capture host what it did with its snippets (accepted, refused
by reason) on a socket of its own beside the snippet link; by default on the next port.
"""

from __future__ import annotations

from pydantic import Field

from vadmon.config.base import StrictModel


class VerdictConfig(StrictModel):
    """Back-channel of a split-host link: refusals shown on the capture host too."""

    bind: str | None = Field(
        None,
        pattern=r"^tcp://",
        description="Inference host: answer capture hosts' verdict requests here (CURVE, the "
        "same keys as the link; null = transport.tcp.bind's address, port + 1).",
    )
    connect: str | None = Field(
        None,
        pattern=r"^tcp://",
        description="Capture host: ask the inference host for verdicts here (null = "
        "transport.tcp.connect's address, port + 1).",
    )
