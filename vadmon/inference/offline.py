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
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.phrases import PhraseBank
from vadmon.inference.scores import Entry, Scored, Scorer, score_message
from vadmon.runtime.messages import ScoreMessage, SnippetMessage


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
    scorer: Scorer,
    encoder: SnippetEncoder,
    phrases: PhraseBank | None = None,
) -> list[ScoreMessage]:
    """ScoreMessages for every complete snippet of ``path``, as inference would send them."""
    assembler = SnippetAssembler(camera, snippet)
    kept: dict[int, np.ndarray] = {}
    out: list[ScoreMessage] = []
    fed: dict[int, tuple[SnippetMessage, list[tuple[str, float]]]] = {}
    scorer.reset(camera)
    for seq, ts, frame in _frames(Path(path)):
        kept[seq] = frame
        kept.pop(seq - 4 * snippet.snippet_frames, None)
        msg = assembler.push(seq, ts, seq % 1024, "file", frame.shape)
        if msg is None:
            continue
        emb = encoder.encode([[kept[s] for s in msg.seqs]])
        match = phrases.match(emb)[0] if phrases else []
        fed[msg.snippet_index] = (msg, match)
        entry = Entry(camera, msg.snippet_index, emb[0], msg.t_start, msg.t_end)
        with torch.inference_mode():
            out += [_message(fed, s) for s in scorer.feed([entry])]
    out += [_message(fed, s) for s in scorer.flush(camera)]  # the lookahead never came
    return out


def _message(
    fed: dict[int, tuple[SnippetMessage, list[tuple[str, float]]]], scored: Scored
) -> ScoreMessage:
    """A scored snippet as inference publishes it (with ``model.lookahead``, possibly later),
    stamped with the file's clock."""
    msg, match = fed.pop(scored.index)
    return score_message(msg, scored, {}, msg.t_end, match)
