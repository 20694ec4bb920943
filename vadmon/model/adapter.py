"""LGT-Adapter: local windowed transformer + global graph convolutions over snippet features.

Module and parameter names follow the published checkpoint (``temporal.resblocks.*``,
``gc1..gc4``, ``disAdj.sigma``) so a published state dict loads with no key renaming.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    """CLIP's GELU approximation; the published adapter uses it everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input dtype (as CLIP does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("c_fc", nn.Linear(width, width * 4)),
                ("gelu", QuickGELU()),
                ("c_proj", nn.Linear(width * 4, width)),
            ]
        )
    )


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block; the additive mask confines attention to local windows."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNorm(width)
        self.mlp = mlp(width)
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class LocalTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


def window_mask(length: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """Block-diagonal additive mask: snippets attend only inside their window of ``window``.

    Identical to the published mask when ``window`` divides ``length``; otherwise the trailing
    partial window forms its own block (the published code would leave those rows fully masked
    and produce NaNs).
    """
    mask = torch.full((length, length), float("-inf"), device=device)
    for start in range(0, length, window):
        end = min(start + window, length)
        mask[start:end, start:end] = 0.0
    return mask


class GraphConvolution(nn.Module):
    """``adj @ (x W)`` plus a residual (identity, or a width-5 temporal conv when widths differ).

    ``project`` and ``residual_rows`` are row-wise (the conv reaches two rows each side), so a
    live window can keep them for rows whose inputs did not change (``PrefixMemo``); ``forward``
    is their composition over every row.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        bound = 1.0 / math.sqrt(out_features)
        nn.init.uniform_(self.weight, -bound, bound)
        self.residual: nn.Module | None = None
        if in_features != out_features:
            self.residual = nn.Conv1d(in_features, out_features, kernel_size=5, padding=2)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight

    def residual_rows(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """The residual of rows ``start..n-1`` of ``x`` ``[B, n, D]``, reading only the rows
        the kernel reaches (the zero padding of rows before ``start`` is never used)."""
        if self.residual is None:
            return x[:, start:]
        lo = max(start - CONV_REACH, 0)
        out = self.residual(x[:, lo:].transpose(1, 2)).transpose(1, 2)
        return out[:, start - lo :]

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return adj @ self.project(x) + self.residual_rows(x)


CONV_REACH = 2  # rows each side the residual conv reads (kernel 5, padding 2)


class DistanceAdj(nn.Module):
    """``exp(-|i-j| / e)``; the checkpoint's ``sigma`` is kept for key compatibility, unused.

    The matrix depends only on the length, so it is built once per length, device and dtype
    (a live window asks for the same few lengths on every snippet).
    """

    def __init__(self) -> None:
        super().__init__()
        self.sigma = nn.Parameter(torch.full((1,), 0.1))
        self._cache: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}

    def forward(
        self, length: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        key = (length, str(device), dtype)
        if key not in self._cache:
            pos = torch.arange(length, device=device, dtype=torch.float32)
            dist = (pos[:, None] - pos[None, :]).abs()
            self._cache[key] = torch.exp(-dist / math.e).to(dtype)
        return self._cache[key]


def similarity_adjacency(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Thresholded cosine similarity, row-softmaxed on each item's valid block only.

    ``lengths=None`` means every row is valid (a live window): one batched softmax instead of
    a per-item loop. Computed in fp32 whatever ``x``'s dtype, returned in that dtype.
    """
    xf = x.float()
    sim = xf @ xf.transpose(1, 2)
    norm = xf.norm(p=2, dim=2, keepdim=True)
    sim = sim / (norm @ norm.transpose(1, 2) + 1e-20)
    if lengths is None:
        return torch.softmax(F.threshold(sim, 0.7, 0.0), dim=2).to(x.dtype)
    out = torch.zeros_like(sim)
    for i, n in enumerate(lengths.tolist()):
        n = int(n)
        if n <= 0:
            continue
        block = F.threshold(sim[i, :n, :n], 0.7, 0.0)
        out[i, :n, :n] = torch.softmax(block, dim=1)
    return out.to(x.dtype)


class LGTAdapter(nn.Module):
    """Local (windowed attention) + global (similarity and distance graphs) temporal modelling.

    Parameters sit directly on this module with the published names; ``VadCLIP`` inherits from
    it so the checkpoint keys stay flat.
    """

    def __init__(self, length: int, width: int, heads: int, layers: int, attn_window: int) -> None:
        super().__init__()
        self.visual_length = length
        self.attn_window = attn_window
        self.frame_position_embeddings = nn.Embedding(length, width)
        self.temporal = LocalTransformer(width, layers, heads)
        half = width // 2
        self.gc1 = GraphConvolution(width, half)
        self.gc2 = GraphConvolution(half, half)
        self.gc3 = GraphConvolution(width, half)
        self.gc4 = GraphConvolution(half, half)
        self.disAdj = DistanceAdj()
        self.linear = nn.Linear(width, width)
        self.gelu = QuickGELU()
        self.register_buffer("attn_mask", window_mask(length, attn_window), persistent=False)
        nn.init.normal_(self.frame_position_embeddings.weight, std=0.01)

    def encode_video(self, visual: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, D]`` snippet features (zero-padded to L) → adapted visual features.

        ``lengths=None``: every row valid (no padding). Runs in the dtype of the adapter's
        weights (fp32 for training and offline; a bf16 copy for the live step).
        """
        return self.encode_window(visual, lengths, None)[0]

    def encode_window(
        self, visual: torch.Tensor, lengths: torch.Tensor | None, memo: PrefixMemo | None
    ) -> tuple[torch.Tensor, PrefixMemo]:
        """``encode_video`` that reuses ``memo``'s rows where they still apply, and returns the
        memo of this window's complete attention blocks.

        Why this is exact: a row of the local transformer depends only on the inputs of its own
        attention block and their positions, and the graph projections and the residual conv
        are row-wise; so rows of complete blocks whose inputs are unchanged (same rows, same
        positions: the window start did not move) give the same results. The similarity graph,
        the second graph layers and the heads span every row and are always recomputed.
        """
        b, n, _ = visual.shape
        dtype = self.frame_position_embeddings.weight.dtype
        keep = memo.rows if memo is not None and memo.applies(visual) else 0
        x = self._local_rows(visual, keep)
        proj1, proj3 = self.gc1.project(x), self.gc3.project(x)
        if keep:
            x = torch.cat((memo.local, x), dim=1)
            proj1 = torch.cat((memo.proj1, proj1), dim=1)
            proj3 = torch.cat((memo.proj3, proj3), dim=1)
        reuse = max(keep - CONV_REACH, 0)
        res1, res3 = self.gc1.residual_rows(x, reuse), self.gc3.residual_rows(x, reuse)
        if reuse:
            res1 = torch.cat((memo.res1[:, :reuse], res1), dim=1)
            res3 = torch.cat((memo.res3[:, :reuse], res3), dim=1)
        adj = similarity_adjacency(x, lengths)
        dis = self.disAdj(n, x.device, dtype).unsqueeze(0).expand(b, n, n)
        x1 = self.gelu(self.gc2(self.gelu(adj @ proj1 + res1), adj))
        x2 = self.gelu(self.gc4(self.gelu(dis @ proj3 + res3), dis))
        out = self.linear(torch.cat((x1, x2), dim=2))
        whole = n // self.attn_window * self.attn_window
        kept = PrefixMemo(
            whole,
            visual[:, :whole],
            x[:, :whole],
            proj1[:, :whole],
            proj3[:, :whole],
            res1[:, : max(whole - CONV_REACH, 0)],
            res3[:, : max(whole - CONV_REACH, 0)],
        )
        return out, kept

    def _local_rows(self, visual: torch.Tensor, start: int) -> torch.Tensor:
        """The local transformer's output for rows ``start..n-1``; ``start`` on the block grid,
        so those rows' attention blocks lie wholly inside them."""
        n = visual.shape[1]
        dtype = self.frame_position_embeddings.weight.dtype
        x = visual[:, start:].to(dtype) + self.frame_position_embeddings.weight[start:n]
        return self.temporal(x, self.attn_mask[start:n, start:n].to(dtype))


@dataclass(frozen=True)
class PrefixMemo:
    """Row-wise adapter results for a window's first ``rows`` rows (whole attention blocks).

    ``visual`` is what they were computed from: they apply to a later window only if its first
    ``rows`` inputs are the same values at the same rows (checked, not assumed, so a moved
    window start, a new segment or another camera can never reuse them). ``res1``/``res3``
    hold ``rows - 2`` rows: the last two depended on rows after the prefix.
    """

    rows: int
    visual: torch.Tensor
    local: torch.Tensor
    proj1: torch.Tensor
    proj3: torch.Tensor
    res1: torch.Tensor
    res3: torch.Tensor

    @staticmethod
    def stack(memos: list[PrefixMemo]) -> PrefixMemo:
        """One memo for a batch of windows whose memos cover the same number of rows."""
        if len({m.rows for m in memos}) != 1:
            raise ValueError("memos of a batch must cover the same rows")
        fields = zip(*(m.tensors() for m in memos), strict=True)
        return PrefixMemo(memos[0].rows, *(torch.cat(f, dim=0) for f in fields))

    def item(self, b: int) -> PrefixMemo:
        """Batch item ``b``'s memo."""
        return PrefixMemo(self.rows, *(t[b : b + 1] for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.visual, self.local, self.proj1, self.proj3, self.res1, self.res3)

    def applies(self, visual: torch.Tensor) -> bool:
        """Do these rows stand for the first ``rows`` rows of the longer window ``visual``?
        (A window no longer than the memo is recomputed whole: nothing new would be left.)"""
        b, n = visual.shape[:2]
        if self.rows == 0 or n <= self.rows or b != self.visual.shape[0]:
            return False
        return torch.equal(visual[:, : self.rows], self.visual)
