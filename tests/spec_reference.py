"""An independent, literal transcription of VADCLIP_SPEC.md used only by the tests.

It reads weights from a state dict (published key names) and computes every step by hand, in
the published sequence-first layout with explicit loops, so the package's model can be checked
on configurations the official fixtures do not cover. It is itself checked against the fixtures.
"""

from __future__ import annotations

import math

import numpy as np
import open_clip
import torch
import torch.nn.functional as F


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def _ln(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.layer_norm(x.float(), x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)


def _mlp(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    h = x @ sd[p + ".c_fc.weight"].T + sd[p + ".c_fc.bias"]
    return _quick_gelu(h) @ sd[p + ".c_proj.weight"].T + sd[p + ".c_proj.bias"]


def _mha(x: torch.Tensor, sd: dict, p: str, heads: int, mask: torch.Tensor) -> torch.Tensor:
    """Multi-head self-attention on ``[L, B, D]`` with an additive mask."""
    length, batch, d = x.shape
    qkv = x @ sd[p + ".in_proj_weight"].T + sd[p + ".in_proj_bias"]
    q, k, v = qkv.split(d, dim=-1)
    hd = d // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(length, batch * heads, hd).transpose(0, 1)

    q, k, v = split(q), split(k), split(v)
    att = (q / math.sqrt(hd)) @ k.transpose(1, 2) + mask
    out = torch.softmax(att, dim=-1) @ v
    out = out.transpose(0, 1).reshape(length, batch, d)
    return out @ sd[p + ".out_proj.weight"].T + sd[p + ".out_proj.bias"]


def block_mask(length: int, window: int) -> torch.Tensor:
    mask = torch.full((length, length), float("-inf"))
    for i in range(length):
        for j in range(length):
            if i // window == j // window:
                mask[i, j] = 0.0
    return mask


def _gc(x: torch.Tensor, adj: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    out = adj @ (x @ sd[p + ".weight"])
    if p + ".residual.weight" in sd:
        res = F.conv1d(
            x.transpose(1, 2), sd[p + ".residual.weight"], sd[p + ".residual.bias"], padding=2
        )
        return out + res.transpose(1, 2)
    return out + x


def adapter(
    sd: dict, visual: torch.Tensor, lengths: list[int], heads: int, layers: int, window: int
) -> torch.Tensor:
    b, length, d = visual.shape
    x = visual + sd["frame_position_embeddings.weight"][:length]
    x = x.transpose(0, 1)  # [L, B, D], as published
    mask = block_mask(length, window)
    for i in range(layers):
        p = f"temporal.resblocks.{i}"
        x = x + _mha(_ln(x, sd, p + ".ln_1"), sd, p + ".attn", heads, mask)
        x = x + _mlp(_ln(x, sd, p + ".ln_2"), sd, p + ".mlp")
    x = x.transpose(0, 1)
    sim_adj = torch.zeros(b, length, length)
    for n in range(b):
        valid = lengths[n]
        for i in range(valid):
            row = torch.zeros(valid)
            for j in range(valid):
                cos = float(x[n, i] @ x[n, j]) / (float(x[n, i].norm() * x[n, j].norm()) + 1e-20)
                row[j] = cos if cos > 0.7 else 0.0
            sim_adj[n, i, :valid] = torch.softmax(row, dim=0)
    idx = torch.arange(length, dtype=torch.float32)
    dist_adj = torch.exp(-(idx[:, None] - idx[None, :]).abs() / math.e).expand(b, length, length)
    x1 = _quick_gelu(_gc(_quick_gelu(_gc(x, sim_adj, sd, "gc1")), sim_adj, sd, "gc2"))
    x2 = _quick_gelu(_gc(_quick_gelu(_gc(x, dist_adj, sd, "gc3")), dist_adj, sd, "gc4"))
    h = torch.cat([x1, x2], dim=2)
    return h @ sd["linear.weight"].T + sd["linear.bias"]


def text_features(
    sd: dict, clip: torch.nn.Module, names: list[str], prefix: int, postfix: int
) -> torch.Tensor:
    """Prompt features using the frozen CLIP text transformer (open_clip's) on built sequences."""
    tokens = open_clip.tokenize(names)
    words = sd["clipmodel.token_embedding.weight"][tokens]
    out = []
    for i in range(len(names)):
        k = int(tokens[i].argmax())
        seq = sd["text_prompt_embeddings.weight"].clone()
        seq[0] = words[i, 0]
        for w in range(1, k):
            seq[prefix + w] = words[i, w]
        seq[prefix + k + postfix] = words[i, k]
        h = seq[None] + sd["clipmodel.positional_embedding"]
        h = clip.transformer(h, attn_mask=clip.attn_mask)
        h = _ln(h, sd, "clipmodel.ln_final")
        out.append(h[0, prefix + k + postfix] @ sd["clipmodel.text_projection"])
    return torch.stack(out)


def config_of(model) -> dict:
    """The spec's settings read from a package model's config (heads, layers, window, prompts)."""
    c = model.config
    return {
        "heads": c.visual_head,
        "layers": c.visual_layers,
        "window": c.attn_window,
        "class_names": c.class_names,
        "prefix": c.prompt_prefix,
        "postfix": c.prompt_postfix,
    }


@torch.no_grad()
def forward(sd: dict, clip: torch.nn.Module, cfg: dict, visual: torch.Tensor, lengths: list[int]):
    v = adapter(sd, visual, lengths, cfg["heads"], cfg["layers"], cfg["window"])
    logits1 = (v + _mlp(v, sd, "mlp2")) @ sd["classifier.weight"].T + sd["classifier.bias"]
    t_c = text_features(sd, clip, cfg["class_names"], cfg["prefix"], cfg["postfix"])
    logits2 = torch.zeros(v.shape[0], v.shape[1], len(t_c))
    for n in range(v.shape[0]):
        a = logits1[n].T @ v[n]
        a = a / a.norm()
        t = t_c + a
        t = t + _mlp(t, sd, "mlp1")
        vn = v[n] / v[n].norm(dim=-1, keepdim=True)
        tn = t / t.norm(dim=-1, keepdim=True)
        logits2[n] = vn @ tn.T / 0.07
    return t_c, logits1, logits2


def losses(logits1, logits2, t_c, labels, lengths):
    bce, align = [], []
    for n, valid in enumerate(lengths):
        k = int(valid / 16 + 1)
        p = torch.sigmoid(logits1[n, :valid, 0])
        bce.append(torch.sort(p, descending=True).values[:k].mean())
        align.append(torch.sort(logits2[n, :valid], dim=0, descending=True).values[:k].mean(0))
    video = torch.stack(bce)
    target = 1 - labels[:, 0]
    l_bce = -(target * torch.log(video) + (1 - target) * torch.log(1 - video)).mean()
    logits = torch.stack(align)
    y = labels / labels.sum(1, keepdim=True)
    l_align = -(y * torch.log_softmax(logits, 1)).sum(1).mean()
    tn = t_c / t_c.norm(dim=-1, keepdim=True)
    l_text = sum(abs(float(tn[0] @ tn[c])) for c in range(1, len(tn)))
    return float(l_bce), float(l_align), float(l_text)


def resample(features: np.ndarray, length: int) -> np.ndarray:
    n = len(features)
    edges = [int(e) for e in np.linspace(0, n, length + 1)]
    rows = []
    for i in range(length):
        a, b = edges[i], edges[i + 1]
        rows.append(features[a:b].mean(0) if b > a else features[a])
    return np.stack(rows).astype(np.float32)
