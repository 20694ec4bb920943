"""``model.encoder``: which backend runs CLIP's image tower, and how OpenVINO variants are made.

The image tower is most of the monitor's CPU (docs/ENCODERS.md), so the backend is a measured
choice like the precision: ``auto`` lets the probe pick backend, precision and threads together
(opt-in: the default stays ``torch``, so a start never converts or quantises unasked).
A converted or quantised tower is kept only if it passes the fidelity gate (``gate_cosine``,
``gate_prob``) against torch fp32 on held-out frames; otherwise the monitor falls back to torch
and logs why. ``triton``: preprocessing stays here, the preprocessed batch (NCHW float32) goes
to NVIDIA Triton over gRPC (docs/TRITON.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from vadmon.config.base import StrictModel


class EncoderConfig(StrictModel):
    """Backend of the CLIP image tower (torch, OpenVINO, Triton)."""

    backend: Literal["auto", "torch", "openvino", "triton"] = Field(
        "torch",
        description="torch: the tower runs in the inference process (precision from "
        "model.precision); auto: on CPU the measured probe picks among torch and OpenVINO × "
        "precisions × 1/2 threads (cached per CPU and library versions, logged), on a GPU "
        "torch; openvino: OpenVINO on CPU, precision from model.precision (auto: probed); "
        "triton: sent to the server at 'url' (model repository from 'vadmon encoder export').",
    )
    cache_dir: Path | None = Field(
        None,
        description="Where converted/quantised OpenVINO towers are cached (per tower hash, "
        "precision and library versions, verified by hash at load); null: "
        "$XDG_CACHE_HOME/vadmon/encoders (default ~/.cache/vadmon/encoders).",
    )
    calibration: str = Field(
        "cameras",
        min_length=1,
        description="int8 calibration and gate frames: 'cameras' (read from the configured "
        "cameras at first start, falling back to 'builtin' if none is readable in time), "
        "'builtin' (frames of OpenCV's vtest.avi when installed, else smooth synthetic "
        "images), or a path to a video file.",
    )
    calibration_frames: int = Field(
        48,
        ge=8,
        le=1024,
        description="Frames read for calibration: three quarters calibrate int8, the last "
        "quarter is held out for the fidelity gate.",
    )
    gate_cosine: float = Field(
        0.999,
        ge=0.0,
        le=1.0,
        description="A non-torch-fp32 variant is kept only if every held-out embedding has at "
        "least this cosine to torch fp32.",
    )
    gate_prob: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="... and the scorer's probabilities on the held-out frames move by at most "
        "this much (VadCLIP class/coarse probabilities, or zero-shot class probabilities).",
    )
    url: str | None = Field(
        None,
        pattern=r"^grpc://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$",
        description="Triton gRPC endpoint, e.g. grpc://10.0.0.5:8001 (needed with triton).",
    )
    model: str = Field(
        "vadmon_clip_image",
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Model name on the Triton server (and of the exported repository entry).",
    )
    timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Per-batch deadline on Triton; a batch not back by then is dropped "
        "(reason 'encoder') and the server is treated as unreachable.",
    )
    max_in_flight: int = Field(
        2,
        ge=1,
        le=64,
        description="Batches sent and not yet answered; at the limit the loop waits for the "
        "oldest (bounded by timeout_s) instead of queueing more.",
    )
    reconnect_initial_s: float = Field(
        0.5, gt=0, le=600, description="First wait before probing an unreachable server."
    )
    reconnect_max_s: float = Field(
        10.0, gt=0, le=3600, description="Cap of the doubling wait between probes."
    )
    max_batch_size: int = Field(
        32, ge=1, le=1024, description="Export: max_batch_size written to config.pbtxt."
    )
    preferred_batch_sizes: list[int] = Field(
        default_factory=lambda: [8, 16],
        max_length=8,
        description="Export: dynamic_batching preferred_batch_size.",
    )
    max_queue_delay_us: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="Export: dynamic_batching max_queue_delay_microseconds (how long Triton "
        "holds a request to batch it with others).",
    )
    instances: int = Field(1, ge=1, le=64, description="Export: instance_group count per device.")

    @model_validator(mode="after")
    def _consistent(self) -> EncoderConfig:
        if self.backend == "triton" and self.url is None:
            raise ValueError("encoder backend 'triton' needs 'url' (grpc://host:8001)")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        if any(b < 1 or b > self.max_batch_size for b in self.preferred_batch_sizes):
            raise ValueError("preferred_batch_sizes must lie in 1..max_batch_size")
        return self
