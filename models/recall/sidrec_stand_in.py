"""The id part of an item added after training, regressed from its vector.

A trained SIDRec embeds a warm item as codes + projected vector + learned id part; an item
upserted later has no id row, so the item head scores it without that part, systematically
lower than a warm item of the same content (the id part carries what the catalogue's history
taught: popularity, co-purchase structure). ``fit_stand_in`` fits a ridge regression from the
item's tokenizer vector (plus an intercept, the mean id part) to the learned id parts of the
warm items; ``SIDRec.item_table`` adds its prediction to every item without an id row. With no
vectors (``content_dim`` 0) the stand-in is the intercept alone: a new item is an average item.

The ridge strength is chosen by k-fold cross-validation of the regression error over the warm
items, so no cold item (nor any evaluation user) is looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from models.recall.sidrec import SIDRec

log = logging.getLogger(__name__)

LAMBDAS = (1e-3, 1e-2, 0.1, 1.0, 10.0)  # ridge strengths tried, x the mean diagonal of x^T x
FOLDS = 5


def _ridge(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """[D + 1, d] weights (last row: intercept) of a ridge fit of ``y`` on centred ``x``."""
    mx, my = x.mean(0), y.mean(0)
    w = x.new_zeros(x.shape[1], y.shape[1])
    if x.shape[1]:
        xc = x - mx
        gram = xc.T @ xc
        ridge = lam * float(gram.diagonal().mean()) * torch.eye(len(gram), dtype=x.dtype)
        w = torch.linalg.solve(gram + ridge, xc.T @ (y - my))
    return torch.cat([w, (my - mx @ w)[None]])


def _cv_error(x: torch.Tensor, y: torch.Tensor, lam: float, folds: int) -> float:
    """Mean squared error of held-out folds (rows in a fixed shuffled order)."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    err = 0.0
    for f in range(folds):
        test = order[f::folds]
        train = torch.ones(len(x), dtype=torch.bool)
        train[test] = False
        w = _ridge(x[train], y[train], lam)
        pred = torch.cat([x[test], x.new_ones(len(test), 1)], 1) @ w
        err += float(((pred - y[test]) ** 2).sum())
    return err / len(x)


@torch.no_grad()
def fit_stand_in(model: SIDRec, lambdas: Sequence[float] = LAMBDAS, folds: int = FOLDS
                 ) -> dict[str, float]:
    """Fit ``model.stand_in`` on the warm items (those with a learned id part); returns the
    chosen strength and the cross-validated error against predicting zero (no id part)."""
    if model.id_emb is None:
        raise ValueError("this model has no id part to stand in for")
    rows = model.has_id.nonzero().squeeze(-1)
    rows = rows[rows < model.id_emb.num_embeddings]
    if len(rows) < 2 * folds:
        raise ValueError(f"{len(rows)} warm items: too few to fit the id stand-in")
    x = model.vectors[rows].double()
    y = model.id_emb.weight[rows].double()
    errors = {lam: _cv_error(x, y, lam, folds) for lam in lambdas}
    lam = min(errors, key=lambda k: errors[k])
    model.stand_in.copy_(_ridge(x, y, lam).to(model.stand_in.dtype))
    zero = float((y ** 2).sum(1).mean())
    out = {"lambda": lam, "cv_mse": round(errors[lam], 6), "zero_mse": round(zero, 6)}
    log.info("id stand-in: ridge %g over %d warm items, CV error %.4g (no id part: %.4g)",
             lam, len(rows), out["cv_mse"], zero)
    return out
