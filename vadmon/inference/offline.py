"""Score a video file with the monitor's own pipeline, in-process, for calibration.

Same snippet assembly (frames per snippet, sampled frames, resampling clock), same encoder and
the same streaming scorer as the live inference process, so the scores a calibration sees are
the scores the camera would produce. Time is the file's own clock (frame index / fps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from vadmon.capture.snippet import SnippetAssembler, SnippetSettings
from vadmon.errors import VadmonError
from vadmon.inference.phrases import PhraseBank
from vadmon.runtime.messages import ScoreMessage


def _frames(path: Path) -> Iterator[tuple[int, float, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VadmonError("cannot open video", str(path), "check the file and its codec")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    try:
        seq = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield seq, seq / fps, frame
            seq += 1
    finally:
        cap.release()


def score_video(
    path: Path,
    camera: str,
    snippet: SnippetSettings,
    scorer,
    encoder,
    phrases: PhraseBank | None = None,
) -> list[ScoreMessage]:
    """ScoreMessages for every complete snippet of ``path``, as inference would send them."""
    assembler = SnippetAssembler(camera, snippet)
    kept: dict[int, np.ndarray] = {}
    out: list[ScoreMessage] = []
    scorer.reset(camera)
    for seq, ts, frame in _frames(Path(path)):
        kept[seq] = frame
        kept.pop(seq - 4 * snippet.frames_per_snippet, None)
        msg = assembler.push(seq, ts, seq % 1024, "file", frame.shape)
        if msg is None:
            continue
        emb = encoder.encode([[kept[s] for s in msg.seqs]])
        with torch.inference_mode():
            res = scorer.score([camera], emb)[0]
        match = phrases.match(emb)[0] if phrases else []
        out.append(
            ScoreMessage(
                camera=camera,
                snippet_index=msg.snippet_index,
                t_start=msg.t_start,
                t_end=msg.t_end,
                score=res.score,
                fine=res.fine,
                class_names=list(scorer.class_names),
                class_probs=res.class_probs,
                mode=scorer.mode,
                t_emitted=msg.t_end,
                phrases=[p for p, _ in match],
                phrase_probs=[s for _, s in match],
            )
        )
    return out
