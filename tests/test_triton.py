"""The CLIP image tower on a real NVIDIA Triton server (pytriton's ``tritonserver`` on the CPU).

One server per module (start-up is the slow part), serving two exported towers: ``tiny`` (the
demo checkpoint's, exported by ``vadmon encoder export``) and ``other`` (a tower with changed
weights, so its hash is not the checkpoint's). The monitors are real ``vadmon run`` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
import torch.nn.functional as F
from capture_support import wait_for
from config_support import yaml_part
from conftest import require_triton
from google.protobuf import text_format
from monitor_support import Monitor, short_dir, write_config
from prometheus_client.parser import text_string_to_metric_families
from triton_support import TritonServer
from tritonclient.grpc import model_config_pb2

from vadmon.capture.source import SyntheticSource
from vadmon.config.encoder import EncoderConfig
from vadmon.encoder.export import ExportOptions, export_repository, tower_hash
from vadmon.encoder.triton_backend import EncoderUnavailable
from vadmon.errors import VadmonError
from vadmon.inference.build import triton_encoder
from vadmon.inference.embedding import SnippetEncoder
from vadmon.inference.remote import PipelinedEncoder
from vadmon.model import checkpoint
from vadmon.model.clip_factory import encode_images

REPO = Path(__file__).resolve().parents[1]
MAX_BATCH = 8  # small, so a 20-image batch is split into requests
QUEUE_DELAY_US = 50_000  # long enough that requests of two monitors meet in Triton's queue
ENCODER = (
    "{{backend: triton, url: '{url}', model: {model}, timeout_s: 1.0, max_batch_size: "
    f"{MAX_BATCH}, preferred_batch_sizes: [2, 4], max_queue_delay_us: {QUEUE_DELAY_US}, "
    "instances: 2, reconnect_initial_s: 0.2, reconnect_max_s: 1.0}}"
)


def clip_of(ckpt: Path) -> torch.nn.Module:
    return checkpoint.load(ckpt).build("cpu", "fp32").clipmodel


def monitor_yaml(path: Path, ckpt: Path, cams: dict[str, str], model: str, url: str, **kw) -> Path:
    """A tests/monitor_support config whose model section sends the tower to Triton."""
    encoder = yaml_part(ENCODER.format(url=url, model=model))
    model_part = {"model": {"snippet_frames": 8, "encoder": encoder}}
    return write_config(path, cams, ckpt, overrides=model_part, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, demo_checkpoint: Path) -> Path:
    """The model repository: ``tiny`` through the CLI, ``other`` with one weight changed."""
    python = require_triton()
    assert python
    repo = tmp_path_factory.mktemp("triton-repo")
    cfg = monitor_yaml(
        repo.parent / "export.yaml",
        demo_checkpoint,
        {"a": "synthetic:"},
        "tiny",
        "grpc://127.0.0.1:1",
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vadmon",
            "encoder",
            "export",
            str(repo),
            "--config",
            str(cfg),
            "--cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    other = clip_of(demo_checkpoint)
    with torch.no_grad():
        other.visual.proj.add_(0.01)
    opts = ExportOptions("other", MAX_BATCH, (2, 4), QUEUE_DELAY_US, 2, gpu=False)
    export_repository(other, repo, opts)
    return repo


@pytest.fixture(scope="module")
def triton(exported: Path, tmp_path_factory):
    log = tmp_path_factory.mktemp("triton-log") / "triton.log"
    server = TritonServer(require_triton(), exported, ("tiny", "other"), log).start()
    yield server
    server.stop()


def remote_encoder(clip: torch.nn.Module, url: str, model: str = "tiny", **kw) -> PipelinedEncoder:
    """What the inference process builds from ``model.encoder`` (connected and checked)."""
    base = dict(timeout_s=1.0, max_in_flight=2, reconnect_initial_s=0.2, reconnect_max_s=1.0)
    cfg = EncoderConfig(backend="triton", url=url, model=model, **{**base, **kw})
    return triton_encoder(clip, cfg)


def frames(n: int) -> list:
    src = SyntheticSource(width=320, height=240, fps=10.0, flash_every_s=2.0)
    return [src.render(i * 7) for i in range(n)]


def test_export_writes_a_triton_repository_with_batching_and_the_tower_hash(
    exported: Path, demo_checkpoint: Path, tmp_path: Path
) -> None:
    """config.pbtxt parses with Triton's own protobuf schema and says what model.encoder set."""
    entry = exported / "tiny"
    assert (entry / "1" / "model.onnx").stat().st_size > 10_000
    cfg = text_format.Parse((entry / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert (cfg.name, cfg.platform, cfg.max_batch_size) == ("tiny", "onnxruntime_onnx", MAX_BATCH)
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == QUEUE_DELAY_US
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, cfg.instance_group[0].KIND_CPU)]
    assert list(cfg.input[0].dims) == [3, 32, 32] and list(cfg.output[0].dims) == [64]
    digest = tower_hash(clip_of(demo_checkpoint))
    assert cfg.parameters["vadmon_tower_sha256"].string_value == digest
    assert not cfg.optimization.execution_accelerators.gpu_execution_accelerator  # --cpu
    gpu = export_repository(
        clip_of(demo_checkpoint), tmp_path, ExportOptions("g", 16, (4,), 100, 2, gpu=True)
    )
    cfg = text_format.Parse((gpu / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert cfg.optimization.execution_accelerators.gpu_execution_accelerator[0].name == "tensorrt"
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, cfg.instance_group[0].KIND_GPU)]
    with pytest.raises(VadmonError, match="already exists"):
        export_repository(clip_of(demo_checkpoint), tmp_path, ExportOptions("g", 16, (4,), 100, 2))


def test_export_of_a_multi_head_tower_computes_what_torch_does(tmp_path: Path) -> None:
    """ViT-B/16 has 12 heads: nn.MultiheadAttention's fused inference op has no ONNX form, so
    export must trace the plain ops (a 1-head tower never takes that path)."""
    import numpy as np
    import onnxruntime as ort

    from vadmon.model.clip_factory import create_clip

    vision = {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 16}
    text = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
    cfg = {"embed_dim": 32, "quick_gelu": True, "vision_cfg": vision, "text_cfg": text}
    clip = create_clip("multi-head", model_cfg=cfg)
    entry = export_repository(clip, tmp_path, ExportOptions("mh", 8, (), 0, 1, gpu=False))
    x = SnippetEncoder(clip).prepare(frames(3))
    session = ort.InferenceSession(
        str(entry / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"images": x.numpy()})[0]
    assert np.abs(got - encode_images(clip, x).numpy()).max() < 1e-4
    assert torch.backends.mha.get_fastpath_enabled()  # restored for the rest of the process


def test_embeddings_through_triton_equal_the_local_tower(triton, demo_checkpoint: Path) -> None:
    clip = clip_of(demo_checkpoint)
    local = SnippetEncoder(clip)
    images = local.prepare(frames(20))
    expected = encode_images(clip, images)
    remote = remote_encoder(clip, triton.url)
    backend = remote.backend
    try:
        before = triton.metrics("tiny")
        got = backend.encode(images)
        after = triton.metrics("tiny")
        assert got.shape == expected.shape == (20, 64)
        assert F.cosine_similarity(got, expected).min() >= 0.9999
        # 20 images, server max_batch_size 8: three requests
        assert after["inference_request_success"] - before["inference_request_success"] == 3
        # the pipelined form gives per-snippet means, equal to the local SnippetEncoder's
        snippets = [frames(4)[:2], frames(4)[2:]]
        remote.submit("tag", snippets)
        assert wait_for(lambda: remote.in_flight() == 0 or remote._queue[0][2].done(), 10)
        [(tag, emb)] = remote.completed()
        assert tag == "tag" and F.cosine_similarity(emb, local.encode(snippets)).min() >= 0.9999
        assert backend.status() == "triton up"
    finally:
        backend.close()


def test_slow_server_fails_batches_at_the_deadline_and_recovers(triton, demo_checkpoint) -> None:
    """SIGSTOPped Triton: a batch fails after timeout_s (not later), the loop waits only when
    max_in_flight batches are out, and the prober reconnects once the server runs again."""
    clip = clip_of(demo_checkpoint)
    remote = remote_encoder(clip, triton.url, timeout_s=1.0, max_in_flight=2)
    backend = remote.backend
    images = SnippetEncoder(clip).prepare(frames(2))
    os.killpg(triton.proc.pid, signal.SIGSTOP)
    try:
        for i in range(3):
            remote.submit(i, [frames(1)])
        t0 = time.monotonic()
        first = remote.completed()  # 3 out, limit 2: waits for the oldest's deadline
        waited = time.monotonic() - t0
        assert first and all(isinstance(e, EncoderUnavailable) for _, e in first)
        assert 0.5 < waited < 3.0, waited
        assert backend.status().startswith("triton unreachable (DEADLINE_EXCEEDED")
        fut = backend.submit(images)  # while down: refused at once, not queued
        assert fut.done() and isinstance(fut.exception(), EncoderUnavailable)
    finally:
        os.killpg(triton.proc.pid, signal.SIGCONT)
    try:
        assert wait_for(lambda: backend.up, 15, 0.1), backend.status()
        assert backend.encode(images).shape == (2, 64)
        assert backend.reconnects == 1
    finally:
        backend.close()


def test_a_wrong_model_or_hash_is_refused_in_one_line(
    triton, demo_checkpoint: Path, tmp_path: Path, subprocess_env
) -> None:
    """The real inference process pointed at another tower: exit 2 with one line; a model the
    server does not have: one line too (checked at connect, before anything is sent)."""
    cfg = monitor_yaml(
        tmp_path / "c.yaml", demo_checkpoint, {"a": "synthetic:"}, "other", triton.url
    )
    out = subprocess.run(
        [sys.executable, "-m", "vadmon.inference", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=REPO,
        timeout=120,
    )
    errors = [x for x in out.stderr.splitlines() if "error" in x.lower()]
    assert out.returncode == 2, out.stderr
    assert len(errors) == 1, out.stderr
    assert "served model is not this checkpoint's CLIP image tower" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    clip = clip_of(demo_checkpoint)
    with pytest.raises(VadmonError) as err:
        remote_encoder(clip, triton.url, model="nosuch")
    assert "Triton has no ready model 'nosuch'" in err.value.line()
    assert "\n" not in err.value.line()


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return out
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def counter(port: int, name: str) -> dict[str, float]:
    """A per-camera family of one monitor's /metrics, by camera."""
    return {dict(k).get("camera", ""): v for k, v in scrape(port).get(name, {}).items()}


def encoder_state(port: int) -> dict[str, float]:
    return {dict(k)["encoder"]: v for k, v in scrape(port).get("vadmon_encoder_up", {}).items()}


SOURCE = "synthetic:w=160&h=120&fps=25&flash=8&flash_len=50"


@pytest.fixture(scope="module")
def monitors(triton, demo_checkpoint: Path):
    """Two monitors (instances, cameras and alerts of their own) sharing the one Triton."""
    from capture_support import free_port

    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    started = []
    base = short_dir("vt-")
    try:
        for n in (1, 2):
            port, instance = free_port(), f"tri{n}-{os.getpid()}"
            cams = {f"h{n}a": SOURCE, f"h{n}b": SOURCE}
            path = monitor_yaml(
                base / f"host{n}.yaml",
                demo_checkpoint,
                cams,
                "tiny",
                triton.url,
                instance=instance,
                ipc=base / f"ipc{n}",
                extra=f"metrics:\n  prometheus_port: {port}\n",
            )
            db = base / f"data-{instance}" / "outbox.sqlite"
            started.append((Monitor(path, env).start(), port, list(cams), db))
        for mon, port, cams, _ in started:
            ok = wait_for(
                lambda p=port, c=cams: all(
                    counter(p, "vadmon_scored_snippets_total").get(x, 0) >= 3 for x in c
                ),
                120,
                0.5,
            )
            assert ok, mon.output()[-3000:]
        yield started
    finally:
        for mon, *_ in started:
            mon.kill_all()


@pytest.mark.slow
def test_two_monitors_share_one_triton_and_it_batches_across_them(triton, monitors) -> None:
    """Both score through one server, and Triton's own counters show batches > 1 made of
    requests from both (executions < requests)."""
    before = triton.metrics("tiny")
    scored = [counter(port, "vadmon_scored_snippets_total") for _, port, *_ in monitors]
    more = lambda: triton.metrics("tiny")["inference_request_success"]  # noqa: E731
    assert wait_for(lambda: more() - before["inference_request_success"] >= 40, 90, 0.5)
    after = triton.metrics("tiny")
    d = {k: after[k] - before[k] for k in before}
    assert d["inference_exec_count"] < d["inference_request_success"], d  # requests merged
    assert d["inference_count"] / d["inference_exec_count"] > 1.0, d  # images per execution
    for (mon, port, cams, _), was in zip(monitors, scored, strict=True):
        now = counter(port, "vadmon_scored_snippets_total")
        assert all(now[c] > was[c] for c in cams), (now, was, mon.output()[-2000:])
        assert encoder_state(port) == {"triton up": 1.0}


def per_camera(port: int, name: str, cams: list[str], pred) -> bool:
    values = counter(port, name)
    return all(pred(c, values.get(c, 0.0)) for c in cams)


def has_events_since(db: Path, cams: list[str], since: float) -> bool:
    from vadmon.alerts.outbox import Outbox

    reader = Outbox(db, readonly=True)
    try:
        return all(reader.list_events(camera=c, since=since) for c in cams)
    finally:
        reader.close()


@pytest.mark.slow
def test_triton_killed_and_restarted_mid_run(triton, monitors) -> None:
    """SIGKILL the server under two running monitors: snippets are dropped and counted
    (reason encoder), the log says so, nothing crashes; back on the same port, both recover by
    themselves, score without further drops, and the next red flash is still an event."""
    drops, scored = "vadmon_encoder_dropped_snippets_total", "vadmon_scored_snippets_total"
    pids = [mon.child("inference") for mon, *_ in monitors]
    triton.kill()
    for mon, port, cams, _ in monitors:
        down = lambda p=port: encoder_state(p).get("triton unreachable") == 0.0  # noqa: E731
        assert wait_for(down, 30, 0.3), mon.output()[-2000:]
        assert wait_for(lambda p=port, c=cams: per_camera(p, drops, c, lambda _, v: v > 0), 30)
        assert "encoder: triton unreachable (" in mon.output()
    triton.start()
    t_up = time.time()
    for mon, port, cams, _ in monitors:
        was = counter(port, scored)
        back = lambda p=port, c=cams, w=was: per_camera(p, scored, c, lambda x, v: v >= w[x] + 3)  # noqa: E731
        assert wait_for(back, 60, 0.3), mon.output()[-2000:]
        assert encoder_state(port) == {"triton up": 1.0}
    # once back, every snippet is scored again: no further encoder drops
    settled = [counter(port, drops) for _, port, *_ in monitors]
    for (mon, port, cams, _), was in zip(monitors, settled, strict=True):
        now = counter(port, scored)
        more = lambda p=port, c=cams, n=now: per_camera(p, scored, c, lambda x, v: v >= n[x] + 3)  # noqa: E731
        assert wait_for(more, 60, 0.3), mon.output()[-2000:]
        assert counter(port, drops) == was
    assert [mon.child("inference") for mon, *_ in monitors] == pids  # no crash, no restart
    assert all(mon.proc.poll() is None for mon, *_ in monitors)
    # no lost event afterwards: the next flash (every 8 s) opens an event on every camera
    for mon, _, cams, db in monitors:
        assert wait_for(lambda d=db, c=cams: has_events_since(d, c, t_up), 40, 0.5), mon.output()[
            -2000:
        ]


def test_dashboard_shows_the_encoder_state_from_the_heartbeat() -> None:
    """The inference heartbeat's ``encoder`` passes the schema and reaches the live view's
    header (red, only when not up) and /metrics."""
    from dashboard_support import NOW, example_state, feed, inference_fields, record

    from vadmon.dashboard.prometheus import StateCollector

    state = example_state(banner=None)
    cams = {"door": (0.87, "Fighting", 0.81)}
    for text, shown, up in (
        ("triton unreachable (UNAVAILABLE)", True, 0.0),
        ("triton up", False, 1.0),
    ):
        fields = inference_fields(cams)
        fields["info"]["encoder"] = text
        fields["info"]["cameras"]["door"]["drops"] = {"encoder": 6, "stale": 1}
        feed(state, "inference", fields, now=NOW)
        header = record(state, now=NOW, width=140).splitlines()[0]
        assert (f"encoder: {text}" in header) is shown, header
        families = {m.name: m for m in StateCollector(state).collect()}
        [sample] = families["vadmon_encoder_up"].samples
        assert (sample.labels["encoder"], sample.value) == (text.split(" (")[0], up)
        drops = families["vadmon_encoder_dropped_snippets"].samples
        assert [(s.labels["camera"], s.value) for s in drops if s.name.endswith("_total")] == [
            ("door", 6.0)
        ]
