"""``model.encoder``: which backend runs CLIP's image tower, and how OpenVINO variants are made.

The image tower is most of the monitor's CPU (docs/ENCODERS.md), so the backend is a measured
choice like the precision: ``auto`` lets the probe pick backend, precision and threads together.
A converted or quantised tower is kept only if it passes the fidelity gate (``gate_cosine``,
``gate_prob``) against torch fp32 on held-out frames; otherwise the monitor falls back to torch
and logs why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vadmon.config.base import StrictModel


class EncoderConfig(StrictModel):
    """Backend of the CLIP image tower (torch, OpenVINO, Triton)."""

    backend: Literal["auto", "torch", "openvino", "triton"] = Field(
        "auto",
        description="auto: on CPU the measured probe picks among torch and OpenVINO × "
        "precisions × 1/2 threads (cached per CPU and library versions, logged); on a GPU "
        "torch. openvino: OpenVINO on CPU, precision from model.precision (auto: probed).",
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
