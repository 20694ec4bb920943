"""The offline pipeline demo: a generated camera and a tiny VadCLIP trained in seconds.

No network and no downloads: the CLIP is ``vadmon-tiny`` (random, seeded) and the adapter is
trained on the spot to notice the synthetic source's red flashes (labelled ``explosion``).
It exercises every process and message of the real monitor, but its scores mean nothing about
real video; the dashboard says so.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vadmon.capture.source import SyntheticSource
from vadmon.inference.embedding import SnippetEncoder
from vadmon.model import checkpoint
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import VadClipConfig
from vadmon.model.losses import total_loss
from vadmon.model.vadclip import VadCLIP

DEMO_CLASSES = ["normal", "explosion", "fighting"]
BANNER = "PIPELINE DEMO: random tiny CLIP, scores mean nothing about real video"
SOURCE = "synthetic:w=320&h=240&fps=10&flash=20&flash_len=40"


# Shared with configs/demo.yaml (a test keeps the two equal). Why these values: the demo model
# is trained per snippet, so its scores are clean and smoothing would only delay start and end
# by a snippet (1.6 s); one snippet spans 1.5 s, so min_duration/cutoff of 1 s confirm or close
# on the first snippet; flashes come every 20 s and last 4 s, so a 10 s cooldown never hides
# one (a real camera keeps the 30 s default); previews at the source's 10 fps make smooth clips.
DEMO_DEFAULTS = """  loop: true
  preview: {fps: 10, max_width: 320}
  alerts:
    threshold: 0.6
    min_duration_s: 1.0
    cutoff_s: 1.0
    smoothing: {kind: none}
    cooldown_s: 10
    pre_capture_s: 3
    post_capture_s: 3
"""

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _videos(rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Ordinary "videos" (one middle frame per snippet): the synthetic camera, static scenes
    (smooth noise, blocks, greys) and real footage when installed.

    Sequences must look like videos (neighbouring snippets alike), not shuffled frames: the
    adapter's similarity graph sees the difference, and a model trained on shuffled frames
    fires on any steady real camera.
    """
    src = SyntheticSource(width=320, height=240, fps=10.0)
    videos = [[src.render(k * 16 + 8 + off) for k in range(64)] for off in (0, 5000)]
    for i in range(12):
        if i % 3 == 0:
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            base = cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)
        elif i % 3 == 1:
            base = np.full((240, 320, 3), int(rng.integers(0, 200)), np.uint8)
            for _ in range(4):
                color = tuple(int(c) for c in rng.integers(0, 200, 3))
                x, y = (int(v) for v in rng.integers(0, 200, 2))
                cv2.rectangle(base, (x, y), (x + 60, y + 40), color, -1)
        else:
            base = np.full((240, 320, 3), int(rng.integers(0, 256)), np.uint8)
        noise = [rng.integers(-8, 9, base.shape) for _ in range(4)]
        videos.append([np.clip(base + n, 0, 255).astype(np.uint8) for n in noise])
    if VTEST.is_file():
        videos.append(_every_16th_frame(VTEST, 49))
    return videos


def _every_16th_frame(path: Path, count: int) -> list[np.ndarray]:
    """Frames 8, 24, 40, … (one per 16-frame snippet) in one pass. Seeking to each decodes
    again from the last keyframe every time: 3.2–3.6 CPU-s for vtest.avi against 0.5–0.6,
    the same frames (compared pixel for pixel)."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    n = 0
    try:
        while len(frames) < count and cap.grab():
            if n % 16 == 8:
                ok, frame = cap.retrieve()
                if ok:
                    frames.append(frame)
            n += 1
    finally:
        cap.release()
    return frames


def _embeddings(
    encoder: SnippetEncoder, rng: np.random.Generator
) -> tuple[list[torch.Tensor], torch.Tensor]:
    videos = _videos(rng)
    normal = [encoder.encode([[f] for f in v]) for v in videos]
    red = []
    for i in range(24):
        video = videos[i % len(videos)]
        frame = video[int(rng.integers(0, len(video)))]
        alpha = 0.75 + 0.25 * float(rng.random())
        red.append((frame * (1 - alpha) + np.array([0, 0, 255]) * alpha).astype(np.uint8))
    return normal, encoder.encode([[f] for f in red])


def _batch(normal: list[torch.Tensor], red: torch.Tensor, rng: np.random.Generator, length: int):
    """16 sequences, half with a red stretch; also the per-snippet targets (1 where red)."""
    seqs, labels, lengths, targets = [], [], [], []
    for i in range(16):
        video = normal[int(rng.integers(0, len(normal)))]
        idx = (int(rng.integers(0, len(video))) + np.arange(length)) % len(video)
        seq = video[torch.from_numpy(idx)].clone()
        n = length if i % 4 else int(rng.integers(8, length))
        seq[n:] = 0
        label = torch.zeros(len(DEMO_CLASSES))
        target = torch.zeros(length)
        if i % 2:
            a = int(rng.integers(0, n - 4))
            b = min(n, a + int(rng.integers(2, 6)))
            seq[a:b] = red[torch.from_numpy(rng.integers(0, len(red), b - a))]
            label[1] = 1.0
            target[a:b] = 1.0
        else:
            label[0] = 1.0
        seqs.append(seq)
        labels.append(label)
        lengths.append(n)
        targets.append(target)
    return torch.stack(seqs), torch.stack(labels), torch.tensor(lengths), torch.stack(targets)


def _snippet_loss(logits1: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor):
    """Per-snippet BCE on the C-Branch: the demo knows where the red is, so it says so.

    The published loss sees only video labels (MIL), so a model trained on it alone keeps
    scoring the snippets after a flash high for 5-10 s and every event outlasts its flash.
    """
    valid = torch.arange(targets.shape[1])[None, :] < lengths[:, None]
    return F.binary_cross_entropy_with_logits(logits1.squeeze(-1)[valid], targets[valid])


Progress = Callable[[int, int], None]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The model is tiny: one thread is as fast on an idle machine and several times faster
    on a loaded one (measured: 300 steps took > 300 s with 2 threads at load 18 on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_demo_checkpoint(
    path: Path, steps: int = 150, seed: int = 0, progress: Progress | None = None
) -> Path:
    """Train the demo model (seconds on an idle CPU core) and save it as a vadmon checkpoint.

    ``progress(done, total)`` is called after the embedding pass (step 0) and after every
    training step, so a caller can show a bar: under load this takes minutes, not seconds.
    """
    with _one_thread():
        return _train(path, steps, seed, progress)


def _train(path: Path, steps: int, seed: int, progress: Progress | None) -> Path:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clip = create_clip("vadmon-tiny")
    cfg = VadClipConfig(
        class_names=DEMO_CLASSES,
        visual_length=64,
        visual_width=64,
        visual_layers=1,
        attn_window=8,
        clip_arch="vadmon-tiny",
    )
    model = VadCLIP(cfg, clip)
    normal, red = _embeddings(SnippetEncoder(clip), rng)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    model.train()
    if progress:
        progress(0, steps)
    for step in range(steps):
        x, y, lengths, targets = _batch(normal, red, rng, cfg.visual_length)
        out = model(x, lengths)
        loss = total_loss(out.logits1, out.logits2, out.text_features, y, lengths, 0.1)["total"]
        loss = loss + _snippet_loss(out.logits1, targets, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress:
            progress(step + 1, steps)
    model.eval()
    ckpt = checkpoint.Checkpoint(cfg, model.state_dict(), meta={"demo": True, "banner": BANNER})
    checkpoint.save(ckpt, path)
    return path


# the review page and API at loopback, without a login (allowed only on a loopback address)
DEMO_WEB = """web:
  enabled: true
  listen: 127.0.0.1:8971
  auth: {enabled: false}
"""


def demo_config(workdir: Path, progress: Progress | None = None) -> Path:
    """Write the demo's config (and its model, once) under ``workdir``; returns the YAML path."""
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt = workdir / "demo-tiny.pt"
    if not ckpt.is_file():
        build_demo_checkpoint(ckpt, progress=progress)
    # one instance per demo dir: two demos at once must not share sockets or shared memory
    instance = "demo-" + hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:8]
    text = f"""# generated by `python run_monitor.py --demo`
instance: {instance}
defaults:
{DEMO_DEFAULTS}cameras:
  synthetic:
    source: "{SOURCE}"
model:
  mode: vadclip
  checkpoint: {ckpt}
  window: 64
  batch_wait_ms: 10
storage:
  dir: {workdir / "data"}
{DEMO_WEB}"""
    path = workdir / "demo.yaml"
    path.write_text(text)
    return path
