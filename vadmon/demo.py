"""The offline pipeline demo: a generated camera and a tiny VadCLIP trained in seconds.

No network and no downloads: the CLIP is ``vadmon-tiny`` (random, seeded) and the adapter is
trained on the spot to notice the synthetic source's red flashes (labelled ``explosion``).
It exercises every process and message of the real monitor, but its scores mean nothing about
real video; the dashboard says so.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from vadmon.embedding import SnippetEncoder
from vadmon.model import checkpoint
from vadmon.model.clip_factory import create_clip
from vadmon.model.config import VadClipConfig
from vadmon.model.losses import total_loss
from vadmon.model.vadclip import VadCLIP
from vadmon.source import SyntheticSource

DEMO_CLASSES = ["normal", "explosion", "fighting"]
BANNER = "PIPELINE DEMO: random tiny CLIP, scores mean nothing about real video"
SOURCE = "synthetic:w=320&h=240&fps=10&flash=20&flash_len=40"


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _varied_frames(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Ordinary-looking frames: smooth noise, shapes, greys, and real footage when installed.

    The demo model must learn "large red area" rather than "not the synthetic source", or it
    would fire on any real camera.
    """
    frames = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            frames.append(cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC))
        elif kind == 1:
            frame = np.full((240, 320, 3), int(rng.integers(0, 200)), np.uint8)
            for _ in range(4):
                color = tuple(int(c) for c in rng.integers(0, 200, 3))
                x, y = (int(v) for v in rng.integers(0, 280, 2))
                cv2.rectangle(frame, (x, y % 200), (x + 60, y % 200 + 40), color, -1)
            frames.append(frame)
        else:
            frames.append(np.full((240, 320, 3), int(rng.integers(0, 256)), np.uint8))
    if VTEST.is_file():
        cap = cv2.VideoCapture(str(VTEST))
        for n in rng.integers(0, 780, count // 2):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(n))
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
        cap.release()
    return frames


def _embeddings(
    encoder: SnippetEncoder, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    src = SyntheticSource(width=320, height=240, fps=10.0)
    normal = [src.render(int(n)) for n in rng.integers(0, 5000, 64)]
    normal += _varied_frames(rng, 96)
    red = []
    for i, n in enumerate(rng.integers(0, 5000, 24)):
        frame = src.render(int(n)) if i % 2 else _varied_frames(rng, 1)[0]
        alpha = 0.75 + 0.25 * float(rng.random())
        red.append((frame * (1 - alpha) + np.array([0, 0, 255]) * alpha).astype(np.uint8))
    return encoder.encode([[f] for f in normal]), encoder.encode([[f] for f in red])


def _batch(normal: torch.Tensor, red: torch.Tensor, rng: np.random.Generator, length: int):
    seqs, labels = [], []
    for i in range(16):
        seq = normal[torch.from_numpy(rng.integers(0, len(normal), length))].clone()
        label = torch.zeros(len(DEMO_CLASSES))
        if i % 2:
            a = int(rng.integers(0, length - 6))
            b = a + int(rng.integers(2, 6))
            seq[a:b] = red[torch.from_numpy(rng.integers(0, len(red), b - a))]
            label[1] = 1.0
        else:
            label[0] = 1.0
        seqs.append(seq)
        labels.append(label)
    return torch.stack(seqs), torch.stack(labels)


def build_demo_checkpoint(path: Path, steps: int = 300, seed: int = 0) -> Path:
    """Train the demo model (a few seconds on CPU) and save it as a vadmon checkpoint."""
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
    for _ in range(steps):
        x, y = _batch(normal, red, rng, cfg.visual_length)
        lengths = torch.full((len(x),), cfg.visual_length)
        out = model(x, lengths)
        loss = total_loss(out.logits1, out.logits2, out.text_features, y, lengths, 0.1)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ckpt = checkpoint.Checkpoint(cfg, model.state_dict(), meta={"demo": True, "banner": BANNER})
    checkpoint.save(ckpt, path)
    return path


def demo_config(workdir: Path, webhook: str | None = None) -> Path:
    """Write the demo's config (and its model, once) under ``workdir``; returns the YAML path."""
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt = workdir / "demo-tiny.pt"
    if not ckpt.is_file():
        build_demo_checkpoint(ckpt)
    text = f"""# generated by `python run_monitor.py --demo`
instance: demo
defaults:
  loop: true
  preview: {{fps: 5, max_width: 320}}
  alerts: {{threshold: 0.6, min_duration_s: 1.0, cutoff_s: 2.0, cooldown_s: 10,
           pre_capture_s: 3, post_capture_s: 3}}
cameras:
  synthetic:
    source: "{SOURCE}"
model:
  mode: vadclip
  checkpoint: {ckpt}
  window: 64
  batch_wait_ms: 10
storage:
  dir: {workdir / "data"}
"""
    path = workdir / "demo.yaml"
    path.write_text(text)
    return path
