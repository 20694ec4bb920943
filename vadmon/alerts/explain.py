"""Why an event fired, from what the model already computed: no extra model call.

Three kinds of evidence, each a small dict in ``explanation.evidence``:

- ``class``: the A-Branch ranking averaged over the event, with each class's probability when
  the event was confirmed, so a reader sees whether the label held or took over later;
- ``score``: the C-Branch curve: peak, how long after onset it peaked, mean, time above threshold;
- ``phrase``: the phrase-bank matches (CLIP image–text) of the peak snippet, i.e. what the frames
  look like in words the operator chose.

``explanation.text`` turns these into one sentence. Everything is bounded (top 3 classes, the
phrases inference sent, at most 16) so payloads stay small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vadmon.runtime.messages import ScoreMessage

MAX_PHRASES = 16


@dataclass
class EvidenceTrack:
    """Accumulates, per event, what ``explain`` needs beyond the class ranking."""

    score_sum: float = 0.0
    n: int = 0
    first_score: float | None = None
    start_ranking: dict[str, float] = field(default_factory=dict)
    peak_phrases: list[tuple[str, float]] = field(default_factory=list)
    peak: float = -1.0

    def add(self, msg: ScoreMessage) -> None:
        self.n += 1
        self.score_sum += float(msg.score)
        if self.first_score is None:
            self.first_score = float(msg.score)
        if msg.score > self.peak:
            self.peak = float(msg.score)
            pairs = zip(msg.phrases, msg.phrase_probs, strict=True)
            self.peak_phrases = [(p, round(float(s), 4)) for p, s in pairs][:MAX_PHRASES]

    def mark_confirmed(self, ranking: list[tuple[str, float]]) -> None:
        """The ranking the ``start`` message announced, kept to show how it moved."""
        self.start_ranking = dict(ranking)


def _class_part(top: list[tuple[str, float]], track: EvidenceTrack) -> tuple[str, list[dict]]:
    evidence = []
    for name, prob in top:
        item: dict[str, Any] = {"kind": "class", "name": name, "prob": round(prob, 4)}
        if name in track.start_ranking:
            item["prob_at_start"] = round(track.start_ranking[name], 4)
        evidence.append(item)
    if not top:
        return "", evidence
    name, prob = top[0]
    text = f"{name} ({prob:.2f}"
    before = track.start_ranking.get(name)
    if before is not None and abs(before - prob) >= 0.05:
        text += f", {'up' if prob > before else 'down'} from {before:.2f} at start"
    elif track.start_ranking and max(track.start_ranking, key=track.start_ranking.get) != name:
        text += ", took over from the label at start"
    if len(top) > 1:
        text += f"; next {top[1][0]} {top[1][1]:.2f}"
    return text + ")", evidence


def _score_part(
    start_ts: float, peak_ts: float, duration_s: float, threshold: float, track: EvidenceTrack
) -> tuple[str, dict]:
    mean = track.score_sum / track.n if track.n else 0.0
    rise = max(0.0, peak_ts - start_ts)
    item = {
        "kind": "score",
        "peak": round(track.peak, 4),
        "peak_after_s": round(rise, 2),
        "mean": round(mean, 4),
        "first": round(track.first_score or 0.0, 4),
        "above_threshold_s": round(duration_s, 2),
        "threshold": threshold,
    }
    text = (
        f"anomaly score peaked at {track.peak:.2f} {rise:.1f} s after onset "
        f"(mean {mean:.2f}) and stayed above {threshold:.2f} for {duration_s:.1f} s"
    )
    return text, item


def _phrase_part(track: EvidenceTrack) -> tuple[str, list[dict]]:
    evidence = [
        {"kind": "phrase", "phrase": p, "prob": s, "at": "peak"} for p, s in track.peak_phrases
    ]
    if not track.peak_phrases:
        return "", evidence
    quoted = " and ".join(f"“{p}” ({s:.2f})" for p, s in track.peak_phrases[:2])
    return f"at the peak the frames best match {quoted}", evidence


def explain(
    *,
    top: list[tuple[str, float]],
    start_ts: float,
    peak_ts: float,
    duration_s: float,
    threshold: float,
    track: EvidenceTrack,
) -> dict[str, Any]:
    """``{"text": sentence, "evidence": [...]}`` for one event state."""
    cls_text, cls_ev = _class_part(top, track)
    score_text, score_ev = _score_part(start_ts, peak_ts, duration_s, threshold, track)
    phrase_text, phrase_ev = _phrase_part(track)
    parts = [p for p in (cls_text, score_text, phrase_text) if p]
    text = "; ".join(parts)
    text = text[:1].upper() + text[1:] + "." if text else ""
    return {"text": text, "evidence": [*cls_ev, score_ev, *phrase_ev]}
