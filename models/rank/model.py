"""CTR/CVR ranker: DIN-style target attention, a DCN-v2 cross block and ESMM heads.

Inputs (see ``models/rank/features.py``, which builds them on the host):

- ``hist_feats`` int64 [U, N, F]: feature rows of each user's last N items, right-aligned
  (most recent in the last column), all-zero rows for padding;
- ``hist_events`` int64 [U, N]: event type of each history entry (0 = padding);
- ``context`` float32 [U, K]: event-type mix, history length, recency of the last event;
- ``cand_feats`` int64 [U, C, F]: feature rows of each user's C candidates (zero rows = padding).

An item's vector is the sum of its field embeddings (id, category, brand, price bucket, SID
tokens). Each candidate attends over its user's history (DIN's target attention, with a
bilinear score instead of DIN's per-pair MLP, which would cost B*N*hidden per batch). The
candidate, its attention read-out and the user vector (mean history + context) go through a
low-rank DCN-v2 cross layer (the feature-crossing block) and a shared trunk into two heads:
pCTR = p(click | shown) and pCVR = p(order | click). ESMM: both are trained over all
candidates through pCTR and pCTCVR = pCTR * pCVR, so pCVR never needs the biased
clicked-only sample.

Serving runs :class:`ServingRanker` around the same model: item ids, events and ages in; the
feature-row gather and the user context (:func:`context_features`) happen in the graph.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from models.rank.features import N_EVENT_TYPES, RECENCY_SCALE_S


@dataclass
class RankerConfig:
    n_items: int = 12101  # trained ids 1..n_items; row 0 padding, row n_items + 1 = unknown item
    n_categories: int = 256  # rows, 0 = unknown
    n_brands: int = 4096  # rows, 0 = unknown
    n_price_buckets: int = 10  # rows, 0 = unknown
    n_sid_levels: int = 0  # SID tokens per item; 0 disables the SID features
    sid_vocab: int = 258  # rows per SID level: codes shifted by one, 0 = unknown
    n_event_types: int = 5  # 0 padding, view, click, cart, order
    n_context: int = 7  # dense user context features
    max_hist: int = 20  # history length N (the host pads or truncates to it)
    d: int = 32  # embedding / attention width
    n_cross: int = 1  # DCN-v2 cross layers
    cross_rank: int = 8  # low rank of each cross layer's weight
    hidden: int = 32  # trunk width
    dropout: float = 0.1

    @property
    def n_fields(self) -> int:
        return 4 + self.n_sid_levels

    def field_sizes(self) -> list[int]:
        base = [self.n_items + 2, self.n_categories, self.n_brands, self.n_price_buckets]
        return base + [self.sid_vocab] * self.n_sid_levels


class ItemEmbedding(nn.Module):
    """Sum of an item's field embeddings; one table, each field at its own row offset."""

    def __init__(self, cfg: RankerConfig) -> None:
        super().__init__()
        sizes = cfg.field_sizes()
        self.table = nn.Embedding(sum(sizes), cfg.d)
        nn.init.normal_(self.table.weight, std=0.05)
        self.offsets = list(itertools.accumulate([0, *sizes[:-1]]))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # [..., F] -> [..., d]
        # one lookup per field, summed: cheaper in onnxruntime than a [..., F, d] ReduceSum
        out = self.table(feats[..., 0])  # the id field sits at offset 0
        for f in range(1, len(self.offsets)):
            out = out + self.table(feats[..., f] + self.offsets[f])
        return out


class TargetAttention(nn.Module):
    """DIN's target attention: read-out = sum_j sigmoid(cand . W_k h_j) * W_v h_j over the history.

    As in DIN the weights are not softmax-normalised, so the read-out keeps the intensity of
    the user's interest (many related items -> a larger vector); padding is masked out of the
    values, so an empty history reads out 0. The query is the raw candidate vector: the bilinear
    score cand^T W_k h spans what separate query and key projections would. Per candidate this
    is two batched matmuls and a sigmoid -- no Softmax, which onnxruntime runs slowly over a
    short last axis.
    """

    def __init__(self, cfg: RankerConfig) -> None:
        super().__init__()
        self.k = nn.Linear(cfg.d, cfg.d, bias=False)
        self.v = nn.Linear(cfg.d, cfg.d, bias=False)
        self.scale = 1.0 / cfg.max_hist  # a full history reads out on the scale of one item
        self.bias = nn.Parameter(torch.zeros(1))  # attention logit offset

    def forward(self, cand: torch.Tensor, hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # cand [U, C, d], hist [U, N, d], mask [U, N] -> read-out [U, C, d]
        vals = self.v(hist) * (mask.unsqueeze(-1).to(hist.dtype) * self.scale)  # [U, N, d]
        w = torch.sigmoid(cand @ self.k(hist).transpose(1, 2) + self.bias)  # [U, C, N]
        return w @ vals


class CrossNet(nn.Module):
    """DCN-v2 cross layers with low-rank weights: x_{l+1} = x0 * (U_l V_l x_l + b_l) + x_l.

    The first layer's residual is folded into its bias (x0 * (W x0 + b) + x0 = x0 * (W x0 + b + 1),
    bias initialised to 1): the same function with one elementwise pass less.
    """

    def __init__(self, dim: int, n_layers: int, rank: int) -> None:
        super().__init__()
        self.v = nn.ModuleList([nn.Linear(dim, rank, bias=False) for _ in range(n_layers)])
        ups = [nn.Linear(rank, dim) for _ in range(n_layers)]
        if ups:
            nn.init.ones_(ups[0].bias)  # the folded residual
        self.u = nn.ModuleList(ups)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i, (v, u) in enumerate(zip(self.v, self.u, strict=True)):
            x = x0 * u(v(x)) if i == 0 else x0 * u(v(x)) + x
        return x


class Ranker(nn.Module):
    def __init__(self, cfg: RankerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.items = ItemEmbedding(cfg)
        self.events = nn.Embedding(cfg.n_event_types, d)
        self.pos = nn.Parameter(torch.zeros(cfg.max_hist, d))  # recency rank of history entries
        self.attn = TargetAttention(cfg)
        self.ctx = nn.Linear(cfg.n_context, d)
        self.cross = CrossNet(3 * d, cfg.n_cross, cfg.cross_rank)
        self.trunk = nn.Sequential(nn.Linear(3 * d, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.heads = nn.Linear(cfg.hidden, 2)  # CTR and CVR logits

    def logits(self, hist_feats: torch.Tensor, hist_events: torch.Tensor, context: torch.Tensor,
               cand_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTR and CVR logits [U, C] (training)."""
        out = self._logits(hist_feats, hist_events, context, cand_feats)
        return out[..., 0], out[..., 1]

    def _logits(self, hist_feats: torch.Tensor, hist_events: torch.Tensor, context: torch.Tensor,
                cand_feats: torch.Tensor) -> torch.Tensor:  # [U, C, 2]
        mask = hist_feats[..., 0] > 0  # [U, N]
        hist = self.items(hist_feats) + self.events(hist_events) + self.pos  # [U, N, d]
        cand = self.items(cand_feats)  # [U, C, d]
        read = self.attn(cand, hist, mask)  # [U, C, d]
        m = mask.unsqueeze(-1).to(hist.dtype)
        pooled = (hist * m).sum(1) / m.sum(1).clamp(min=1.0)  # untargeted interest [U, d]
        user = (pooled + self.ctx(context)).unsqueeze(1).expand_as(cand)
        x = torch.cat([cand, read, user], dim=-1)
        x = x.reshape(-1, x.shape[-1])  # 2-D from here: onnxruntime fuses MatMul + Add (Gemm)
        return self.heads(self.trunk(self.cross(x))).view(cand.shape[0], cand.shape[1], 2)

    def forward(self, hist_feats: torch.Tensor, hist_events: torch.Tensor, context: torch.Tensor,
                cand_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pCTR, pCVR, pCTCVR [U, C]; 0 at padded candidates."""
        ctr, cvr = self.logits(hist_feats, hist_events, context, cand_feats)
        valid = (cand_feats[..., 0] > 0).to(ctr.dtype)
        pctr, pcvr = torch.sigmoid(ctr) * valid, torch.sigmoid(cvr) * valid
        return pctr, pcvr, pctr * pcvr


def context_features(events: torch.Tensor, last_age_s: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``models.rank.features.context_features`` (NaN age = unknown): [U, K]."""
    n_hist = events.shape[1]
    counts = F.one_hot(events, N_EVENT_TYPES).sum(1).to(torch.float32)  # [U, N_EVENT_TYPES]
    length = n_hist - counts[:, :1]  # [U, 1] non-padding entries
    known = torch.isfinite(last_age_s).unsqueeze(1) & (length > 0)
    age = torch.where(known, last_age_s.unsqueeze(1).clamp(min=0.0), 0.0)
    recency = (torch.log1p(age) * (1.0 / math.log1p(RECENCY_SCALE_S))).clamp(max=1.5)
    return torch.cat([counts[:, 1:] / length.clamp(min=1.0),
                      torch.log1p(length) / math.log1p(max(n_hist, 1)),
                      known.to(torch.float32), recency], dim=1)


class ServingRanker(nn.Module):
    """The serving graph: item ids in, scores out (``models.rank.features.ServingInputs``).

    The feature-row gather and the user context run inside the graph (torch and ONNX alike),
    so a serving call passes only ids. ``item_table`` is the live ``ItemFeatures.table``, an
    input with a dynamic row axis rather than an initializer: the catalogue grows online
    without re-exporting. Ids are clipped to the table like ``np.take(mode="clip")``: <= 0 is
    the padding row, ids past the table the unknown-item sentinel (its last row).
    """

    def __init__(self, ranker: Ranker) -> None:
        super().__init__()
        self.ranker = ranker

    def forward(self, item_table: torch.Tensor, hist_items: torch.Tensor,
                hist_events: torch.Tensor, last_age_s: torch.Tensor, cand_items: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        last = item_table.shape[0] - 1
        hist_items, cand_items = hist_items.clamp(0, last), cand_items.clamp(0, last)
        events = torch.where(hist_items > 0, hist_events, 0)
        return self.ranker(item_table[hist_items], events, context_features(events, last_age_s),
                           item_table[cand_items])


def esmm_loss(ctr: torch.Tensor, cvr: torch.Tensor, click: torch.Tensor, order: torch.Tensor,
              weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ESMM losses (CTR, CTCVR), each a weighted mean BCE over all candidates.

    ``click``/``order`` are 0/1 floats, ``weight`` is 0 at padding. pCTCVR's BCE is computed from
    log-sigmoids, so it stays finite when pCTR * pCVR approaches 0 or 1.
    """
    total = weight.sum().clamp(min=1.0)
    l_ctr = (F.binary_cross_entropy_with_logits(ctr, click, reduction="none") * weight).sum()
    log_p = (F.logsigmoid(ctr) + F.logsigmoid(cvr)).clamp(max=-1e-7)  # log pCTCVR
    log_not_p = torch.where(log_p < -math.log(2), torch.log1p(-torch.exp(log_p)),
                            torch.log(-torch.expm1(log_p)))
    l_ctcvr = -((order * log_p + (1 - order) * log_not_p) * weight).sum()
    return l_ctr / total, l_ctcvr / total
