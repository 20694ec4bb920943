"""``model.encoder.backend: triton``: the image tower served by NVIDIA Triton over gRPC.

Why this shape: an inference process must keep running whatever the server does. Every batch
is sent with ``async_infer`` under a deadline (``timeout_s``) and answered through a future, so
the loop scores the previous batch while Triton encodes this one. A failed or late batch fails
its future (the loop drops those snippets, reason ``encoder``) and marks the server down; while
down, batches fail at once and a prober thread retries with doubling waits, each time on a fresh
channel (gRPC's own reconnect backoff grows to minutes). At every (re)connect the served model
is checked: its shapes against the local tower and its ``vadmon_tower_sha256`` parameter against
the hash of the checkpoint's tower, so a server holding another CLIP is refused in one line.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from vadmon.encoder.export import HASH_PARAMETER, INPUT, OUTPUT
from vadmon.errors import VadmonError

log = logging.getLogger("vadmon.encoder.triton")


class EncoderUnavailable(Exception):
    """A batch the server did not answer in time, or at all (those snippets are dropped)."""


class ModelNotReady(VadmonError):
    """The server answers but does not (yet) serve the model: an error at start, while
    reconnecting just another wait (a restarted Triton loads its models after it is live)."""


@dataclass(frozen=True)
class TritonSettings:
    url: str  # grpc://host:port
    model: str
    timeout_s: float
    max_in_flight: int
    reconnect_initial_s: float
    reconnect_max_s: float
    image_size: int  # the local tower's S and D: what the served model must take and give
    embed_dim: int
    tower_sha256: str

    @property
    def target(self) -> str:
        return self.url.removeprefix("grpc://")


def _client(target: str):
    try:
        import tritonclient.grpc as grpcclient
    except ImportError:
        raise VadmonError(
            "model.encoder.backend triton needs tritonclient", fix="pip install 'vadmon[triton]'"
        ) from None
    return grpcclient.InferenceServerClient(target)


def _short(exc: BaseException) -> str:
    """One short reason: gRPC status or the first line of the message."""
    status = getattr(exc, "status", lambda: None)()
    if status:
        return str(status).removeprefix("StatusCode.")
    text = getattr(exc, "message", lambda: None)() or str(exc) or type(exc).__name__
    return text.splitlines()[0][:80]


def check_served(client, s: TritonSettings) -> int:
    """The served model is this checkpoint's tower with the expected layout; returns the
    server's max_batch_size. Raises VadmonError (one line) when it is not."""
    where = f"model.encoder ({s.url}, model {s.model!r})"
    if not client.is_model_ready(s.model, client_timeout=s.timeout_s):
        raise ModelNotReady(f"Triton has no ready model {s.model!r}", where, "export and load it")
    meta = client.get_model_metadata(s.model, as_json=True, client_timeout=s.timeout_s)
    cfg = client.get_model_config(s.model, as_json=True, client_timeout=s.timeout_s)["config"]
    shapes = {t["name"]: [int(d) for d in t["shape"]] for t in meta["inputs"] + meta["outputs"]}
    size, dim = s.image_size, s.embed_dim
    if shapes.get(INPUT) != [-1, 3, size, size] or shapes.get(OUTPUT) != [-1, dim]:
        raise VadmonError(
            f"served model takes/gives {shapes}, this tower needs {INPUT} [-1, 3, {size}, "
            f"{size}] → {OUTPUT} [-1, {dim}]",
            where,
            "serve the repository 'vadmon encoder export' wrote for this config",
        )
    served = cfg.get("parameters", {}).get(HASH_PARAMETER, {}).get("string_value", "")
    if served != s.tower_sha256:
        got = f"sha256 {served[:12]}…" if served else f"no {HASH_PARAMETER} parameter"
        raise VadmonError(
            f"served model is not this checkpoint's CLIP image tower ({got}, expected "
            f"{s.tower_sha256[:12]}…)",
            where,
            "export the tower of this checkpoint (vadmon encoder export) and serve that",
        )
    return int(cfg.get("max_batch_size", 0) or 0)


class TritonImageEncoder:
    """``ImageEncoder`` on a Triton server; ``submit`` is the asynchronous form."""

    backend = "triton"
    precision = "fp32"

    def __init__(self, settings: TritonSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client = None
        self._max_batch = 0
        self._state = "connecting"
        self._reason = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.reconnects = 0
        self._prober = threading.Thread(target=self._probe_loop, daemon=True, name="triton")

    # --- connection --------------------------------------------------------------------------
    def connect(self) -> None:
        """First contact: a wrong model is a config error (raised); an unreachable server is
        not (inference starts, snippets are dropped until the prober gets through)."""
        try:
            self.try_connect()
        except VadmonError:
            raise
        except Exception as exc:  # grpc/tritonclient raise many types
            self._mark_down(_short(exc))
        self._prober.start()

    def try_connect(self) -> None:
        """One attempt on a fresh channel; raises when the server is not there or not right."""
        client = _client(self.settings.target)
        try:
            max_batch = check_served(client, self.settings)
        except BaseException:
            client.close()
            raise
        with self._lock:
            old, self._client, self._max_batch = self._client, client, max_batch
            was, self._state, self._reason = self._state, "up", ""
        if old is not None:
            old.close()
        if was != "connecting":
            self.reconnects += 1
        log.info("encoder: triton %s model %s ready", self.settings.url, self.settings.model)

    def _mark_down(self, reason: str, state: str = "unreachable") -> None:
        with self._lock:
            changed = self._state != state or self._reason != reason
            self._state, self._reason = state, reason
        if changed:
            log.warning("encoder: triton %s (%s); snippets dropped until it is back", state, reason)
        self._wake.set()

    def _probe_loop(self) -> None:
        """While up, sleep until a failure wakes us (or a period passes: a missed wake-up costs
        one period, never recovery); while down, retry with doubling waits."""
        wait = self.settings.reconnect_initial_s
        while not self._stop.is_set():
            if self.up:
                self._wake.wait(timeout=self.settings.reconnect_max_s)
                self._wake.clear()
                wait = self.settings.reconnect_initial_s
                continue
            if self._stop.wait(wait):
                return
            try:
                self.try_connect()
            except ModelNotReady as exc:
                self._mark_down(exc.what)
                wait = min(wait * 2, self.settings.reconnect_max_s)
            except VadmonError as exc:
                self._mark_down(exc.what, "refused")
                wait = self.settings.reconnect_max_s
            except Exception as exc:
                self._mark_down(_short(exc))
                wait = min(wait * 2, self.settings.reconnect_max_s)

    @property
    def up(self) -> bool:
        with self._lock:
            return self._state == "up"

    def status(self) -> str:
        """What the dashboard shows: ``triton up`` or ``triton unreachable (…)``."""
        with self._lock:
            return f"triton {self._state}" + (f" ({self._reason})" if self._reason else "")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- inference ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.submit(images).result(timeout=self.settings.timeout_s + 5)

    def submit(self, images: torch.Tensor) -> Future:
        """Send ``[N,3,S,S]`` fp32; the future gives ``[N, D]`` or fails with EncoderUnavailable."""
        out: Future = Future()
        with self._lock:
            client, state, reason, limit = self._client, self._state, self._reason, self._max_batch
        if state != "up" or client is None:
            out.set_exception(EncoderUnavailable(f"triton {state} ({reason})"))
            return out
        arr = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        step = limit if limit > 0 else len(arr)
        chunks = [arr[i : i + step] for i in range(0, len(arr), step)]
        gather = _Gather(len(chunks))
        for i, chunk in enumerate(chunks):
            self._send(client, chunk, partial(self._answered, out, gather, i, len(chunk)))
        return out

    def _send(self, client, chunk: np.ndarray, callback) -> None:
        import tritonclient.grpc as grpcclient

        inp = grpcclient.InferInput(INPUT, list(chunk.shape), "FP32")
        inp.set_data_from_numpy(chunk)
        try:
            client.async_infer(
                self.settings.model,
                [inp],
                callback=callback,
                outputs=[grpcclient.InferRequestedOutput(OUTPUT)],
                client_timeout=self.settings.timeout_s,
            )
        except Exception as exc:
            callback(None, exc)

    def _answered(self, out: Future, gather: _Gather, i: int, n: int, result, error) -> None:
        """gRPC thread: one chunk back (or failed); the future completes with the last."""
        if out.done():  # another chunk of this batch already failed it
            return
        if error is None:
            emb = result.as_numpy(OUTPUT) if result is not None else None
            if emb is None or emb.shape != (n, self.settings.embed_dim) or emb.dtype != np.float32:
                error = EncoderUnavailable(f"bad response shape {getattr(emb, 'shape', None)}")
            elif not np.isfinite(emb).all():
                error = EncoderUnavailable("non-finite embeddings")
        if error is not None:
            reason = _short(error)
            self._mark_down(reason)
            out.set_exception(EncoderUnavailable(f"triton unreachable ({reason})"))
            return
        whole = gather.add(i, emb)
        if whole is not None:
            out.set_result(torch.from_numpy(whole).float())


class _Gather:
    """The chunks of one batch, answered on any gRPC thread, in request order."""

    def __init__(self, n: int) -> None:
        self._parts: list[np.ndarray | None] = [None] * n
        self._left = n
        self._lock = threading.Lock()

    def add(self, i: int, part: np.ndarray) -> np.ndarray | None:
        with self._lock:
            self._parts[i] = part
            self._left -= 1
            return np.concatenate(self._parts) if self._left == 0 else None
