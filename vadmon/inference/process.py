"""The inference process: snippets from every camera → one CLIP batch → windows → scores.

One loop, top to bottom: gather ready snippets (PULL, connected to every camera) → drop stale
ones and keep only the newest few per camera (a process that was stopped or slow catches up on
*new* frames, never a backlog) → over capacity, fill the batch round-robin across cameras,
starting after the camera served last → copy the sampled frames out of the shared-memory rings
→ one CLIP forward → per-camera sliding-window VadCLIP (or zero-shot) → ``ScoreMessage`` on
PUB → heartbeat to the supervisor. Every snippet not scored is counted per camera and per
reason (``DROP_REASONS``) and shown in the heartbeat.

Run through ``python -m vadmon.inference --config configs/x.yaml`` (``__main__.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import zmq

from vadmon.inference.admission import Admission
from vadmon.inference.camera_stats import CameraStats
from vadmon.inference.change_gate import GateSettings, build_gate
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.phrases import PhraseBank
from vadmon.inference.provisional import attach, publish_early
from vadmon.inference.rings import CameraRings
from vadmon.inference.schedule import Received, held_count, select
from vadmon.inference.scores import Entry, Scored, Scorer, score_message
from vadmon.inference.verdicts import open_verdicts
from vadmon.runtime import limits as fixed
from vadmon.runtime.heartbeat import HeartbeatSender
from vadmon.runtime.link import LinkServer, open_server, relay_preview, unpack_frames
from vadmon.runtime.messages import PreviewFrame, SnippetMessage
from vadmon.runtime.status_schema import (
    INFERENCE_LATENCY_BUCKETS,
    MAX_RECENT_SCORES,
    Histogram,
    HistogramBody,
    InferenceCamera,
    InferenceCounters,
    InferenceInfo,
    InferenceStatus,
)
from vadmon.runtime.transport import (
    Reconnector,
    RecvStats,
    SocketLimits,
    close_socket,
    publisher,
    puller,
    recv_message,
    send_message,
)
from vadmon.runtime.zmq_context import process_context

log = logging.getLogger("vadmon.inference.process")

Waiting = tuple[SnippetMessage, list[tuple[str, float]]]  # a fed snippet and its phrases


@dataclass(frozen=True)
class InferenceSettings:
    snippet_endpoints: list[str]
    score_endpoint: str
    batch_max: int
    batch_wait_ms: float
    max_age_s: float  # snippets older than this when we get to them are skipped
    per_camera_max: int  # newest snippets kept per camera per batch
    hwm: int
    heartbeat_s: float
    link: LinkServer | None  # set: snippets arrive over tcp+CURVE with frames inline
    cameras: frozenset[str]  # configured: the only ones given any state
    change_gate: GateSettings | None  # set: unchanged frames reuse their embedding
    provisional: frozenset[str]  # cameras with alerts.provisional.enabled (lookahead-0 scores)


class InferenceLoop:
    def __init__(
        self,
        settings: InferenceSettings,
        scorer: Scorer,
        encoder: SnippetEncoder,
        ctx: zmq.Context,
        runtime: str = "",
        phrases: PhraseBank | None = None,
    ) -> None:
        self.settings = settings
        self.phrases = phrases
        self.runtime = runtime  # "device/precision", shown on the dashboard
        self.scorer = scorer
        attach(scorer, settings.provisional)  # lookahead-0 scores for the provisional alerts
        self.encoder = encoder
        limits = SocketLimits(hwm=settings.hwm)
        self.auth = None
        self.reconnector: Reconnector | None = None
        if settings.link is not None:
            self.pull, self.auth = open_server(ctx, settings.link, limits)
        else:
            self.pull = puller(ctx, settings.snippet_endpoints[0], limits=limits)
            for ep in settings.snippet_endpoints[1:]:
                self.pull.connect(ep)
            self.reconnector = Reconnector(self.pull, settings.snippet_endpoints)
        self.verdicts = open_verdicts(ctx, settings.link, settings.cameras)  # back-channel
        self.pub = publisher(
            ctx, settings.score_endpoint, limits=SocketLimits(hwm=fixed.SCORE_PUB_HWM)
        )
        self.recv_stats = RecvStats()
        self.cameras: dict[str, CameraStats] = defaultdict(CameraStats)
        self.rings = CameraRings()
        self.refused: dict[str, int] = {"refused_camera": 0, "clock_skew": 0}
        self.admission = Admission(settings.cameras)
        self.heartbeat = HeartbeatSender.from_env()
        self._last_beat = 0.0
        self._rr_last = ""  # camera served last by round_robin
        # what a score is published with, kept until the scorer returns it (lookahead); a
        # snippet the scorer never returns (it left the window unscored) ages out, bounded
        self._waiting: dict[str, OrderedDict[int, Waiting]] = defaultdict(OrderedDict)
        self.batches = 0
        self.latency = Histogram(INFERENCE_LATENCY_BUCKETS)  # every published score
        self.gate = build_gate(settings.change_gate, encoder)  # None: every snippet encoded

    # --- gather ------------------------------------------------------------------------------
    def gather(self) -> list[Received]:
        """Snippets with their payload (frames inline on tcp links, None on shared memory)."""
        first = self._receive(fixed.FIRST_SNIPPET_WAIT_MS)
        if first is None:
            return []
        got = [first]
        deadline = time.monotonic() + self.settings.batch_wait_ms / 1000
        # held snippets: a batch per step at most, the rest wait in order (heartbeats flow)
        while (
            len(got) < self.settings.batch_max * fixed.GATHER_BATCHES
            and held_count(got) < self.settings.batch_max
        ):
            left = max(0, int((deadline - time.monotonic()) * 1000))
            item = self._receive(left)
            if item is None:
                break
            got.append(item)
        for m, p in got:
            if isinstance(m, PreviewFrame):
                self.relay(m, p)
        return [(m, p) for m, p in got if isinstance(m, SnippetMessage)]

    def drop(self, camera: str, reason: str, count: int = 1) -> None:
        self.cameras[camera].drops[reason] += count

    def _receive(self, timeout_ms: int) -> tuple[object, bytes | None] | None:
        """One message; over a tcp link, a snippet or preview its sender may not send (another
        key's camera, a time far from ours) is dropped here."""
        link = self.settings.link
        item = recv_message(self.pull, timeout_ms, self.recv_stats, peer=link is not None)
        if item is None:
            return item
        if not self.admission.known(item[0]):
            self.verdicts.note(self.recv_stats.peer, item[0], "unknown_camera")
            return ("refused", None)  # an unknown camera: one counter, no state
        if link is None:
            return item
        refused = link.admit(item[0], self.recv_stats.peer, time.time())
        self.verdicts.note(self.recv_stats.peer, item[0], refused)  # told to its sender
        if refused is None:
            return item
        self.refused[refused] += 1
        self.admission.count_refusal(item[0], refused)  # type: ignore[arg-type]
        return ("refused", None)  # neither a snippet nor a preview: filtered out by gather

    def relay(self, msg: PreviewFrame, payload: bytes | None) -> None:
        """Previews over a tcp link go on to alerts; only for cameras that send snippets."""
        if self.settings.link is None or msg.camera not in self.cameras:
            self.recv_stats.malformed += 1
            return
        stats = self.cameras[msg.camera]
        if relay_preview(self.pub, msg, payload):
            stats.previews_relayed += 1
        else:
            stats.previews_refused += 1

    def select(self, msgs: list[Received], now: float) -> list[Received]:
        """Latest wins (``schedule.select``); the camera served last is remembered."""
        keep, self._rr_last = select(msgs, now, self.settings, self._rr_last, self.drop)
        return keep

    def read_frames(self, msg: SnippetMessage, payload: bytes | None) -> list[np.ndarray] | None:
        if payload is not None:
            return unpack_frames(msg, payload)
        if not msg.ring or self.settings.link is not None:
            return None  # a remote peer must send frames, never name our shared memory
        frames = self.rings.read(msg)
        if frames is None and self.rings.failed:
            self.cameras[msg.camera].ring_errors += 1
        return frames

    # --- one step ----------------------------------------------------------------------------
    def step(self) -> None:
        if self.reconnector is not None:
            self.reconnector.check()  # e.g. after an over-size message dropped a camera
        t0 = time.time()
        msgs = self.select(self.gather(), time.time())
        ready: list[tuple[SnippetMessage, list[np.ndarray]]] = []
        for m, payload in msgs:
            frames = self.read_frames(m, payload)
            if frames is None:
                self.drop(m.camera, "frames")
            else:
                ready.append((m, frames))
        if ready:
            self.process(ready, t0)
        self.harvest()
        self.flush_quiet()
        self.verdicts.serve()
        self.beat()

    def flush_quiet(self) -> None:
        """A camera that stopped sending (stream ended, outage) still gets the scores its last
        snippets were waiting for, with the lookahead that did arrive, after ``max_age_s``."""
        now = time.monotonic()
        for cam in self.scorer.waiting():
            if now - self.cameras[cam].last_arrival > self.settings.max_age_s:
                for res in self.scorer.flush(cam):
                    self.publish(res, {})

    def process(self, ready: list[tuple[SnippetMessage, list[np.ndarray]]], t0: float) -> None:
        t_read = time.time()
        frames = [f for _, f in ready]
        if self.encoder.remote:  # sent now, scored by harvest() when it is back
            return self.encoder.submit((ready, t0, t_read), frames)
        gate, encode = self.gate, self.encoder.encode  # gate: a reused embedding keeps its row
        self.score_batch(ready, gate.encode(ready, encode) if gate else encode(frames), t0, t_read)

    def harvest(self) -> None:
        """Batches a remote tower answered (a failed one: ``encoder`` drops); none locally."""
        for (ready, t0, t_read), emb in self.encoder.completed():
            if isinstance(emb, Exception):
                for m, _ in ready:
                    self.drop(m.camera, "encoder")
            else:
                self.score_batch(ready, emb, t0, t_read)

    def score_batch(self, ready, emb: torch.Tensor, t0: float, t_read: float) -> None:
        t_enc = time.time()
        # a camera appears once per scorer call: score in rounds of distinct cameras
        pending = list(zip([m for m, _ in ready], emb, strict=True))
        while pending:
            seen: set[str] = set()
            now_round, later = [], []
            for m, e in pending:
                (later if m.camera in seen else now_round).append((m, e))
                seen.add(m.camera)
            pending = later
            for m, _ in now_round:
                self.cameras[m.camera].last_index = m.snippet_index
                self.cameras[m.camera].last_arrival = time.monotonic()
            batch = torch.stack([e for _, e in now_round])
            matches = self.phrases.match(batch) if self.phrases else [[] for _ in now_round]
            # the phrases ride with the snippet: with lookahead its score is published later
            entries = []
            for (m, e), match in zip(now_round, matches, strict=True):
                waiting = self._waiting[m.camera]
                waiting[m.snippet_index] = (m, match)
                while len(waiting) > fixed.MAX_WAITING:
                    waiting.popitem(last=False)
                entries.append(Entry(m.camera, m.snippet_index, e, m.t_start, m.t_end))
            results = self.scorer.feed(entries)
            t_adapt = time.time()
            timings = {"read": t_read - t0, "encode": t_enc - t_read, "adapter": t_adapt - t_enc}
            for res in results:
                self.publish(res, timings)
            publish_early(self.pub, self.scorer, timings, self._waiting)
        self.batches += 1

    def publish(self, res: Scored, timings: dict[str, float]) -> None:
        got = self._waiting[res.camera].pop(res.index, None)
        if got is None:  # a score for a snippet this loop never fed: cannot be published
            log.warning("score for %s #%d without its snippet", res.camera, res.index)
            return
        m, phrases = got
        now = time.time()
        timings = dict(timings, latency=now - m.t_end)
        msg = score_message(m, res, timings, now, phrases)
        send_message(self.pub, msg)
        st = self.cameras[m.camera]
        st.snippets += 1
        st.rate.add()
        st.recent.append(round(_unit(res.score), 3))
        self.latency.observe(timings["latency"])
        # float32 softmax can say 1.0000001 and a file's clock can run ahead of ours: report
        # what the schema promises (probabilities in [0, 1], latencies ≥ 0)
        st.score = _unit(res.score)
        label, prob = msg.top_class()
        st.label, st.label_prob = label, _unit(prob)
        st.latency_ms = max(0.0, timings["latency"] * 1000)
        st.last_ts = m.t_end

    def beat(self) -> None:
        now = time.time()
        if self.heartbeat is None or now - self._last_beat < self.settings.heartbeat_s:
            return
        self._last_beat = now
        self.heartbeat.beat_built(self.status)

    def status(self) -> InferenceStatus:
        """The ``inference`` heartbeat body, built here and sent as is."""
        share = fixed.BEAT_SCORES_BUDGET // max(1, len(self.cameras))
        keep = max(fixed.BEAT_SCORES_MIN, min(MAX_RECENT_SCORES, share))
        cams = {
            name: s.body(
                keep,
                self.scorer.gap_counters(name),
                self.admission.of_camera(name),
                self.gate.counters(name) if self.gate else {},
            )
            for name, s in self.cameras.items()
        }
        for name in self.admission.refused.keys() - cams.keys():  # refused, never scored
            cams[name] = InferenceCamera(refused=self.admission.of_camera(name))
        counters = {
            "malformed": self.recv_stats.malformed,
            "batches": self.batches,
            "ring_errors": self.rings.errors,
            **self.refused,
            "unknown_camera": self.admission.unknown,
            "reconnects": self.reconnector.reconnects if self.reconnector else 0,
            "ring_mappings": len(self.rings.readers),
        }
        info = InferenceInfo(
            mode=self.scorer.mode,
            device=self.runtime.split("/")[0],
            precision=self.runtime.split("/")[-1],
            encoder=self.encoder.status()[:200],
            cameras=cams,
            latency=HistogramBody.model_validate(self.latency.body()),
        )
        return InferenceStatus(counters=InferenceCounters.model_validate(counters), info=info)

    def close(self) -> None:
        self.rings.close()
        self.verdicts.close()
        if self.reconnector is not None:
            self.reconnector.close()
        close_socket(self.pull)
        close_socket(self.pub, self.settings.score_endpoint)
        if self.auth is not None:
            self.auth.stop()
        if self.heartbeat is not None:
            self.heartbeat.close()


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def run_inference(
    settings: InferenceSettings,
    scorer: Scorer,
    encoder: SnippetEncoder,
    stop: threading.Event,
    runtime: str = "",
    phrases: PhraseBank | None = None,
) -> int:
    loop = InferenceLoop(settings, scorer, encoder, process_context(), runtime, phrases)
    try:
        while not stop.is_set():
            loop.step()
    finally:
        loop.close()
    return 0
