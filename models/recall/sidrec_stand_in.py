"""The id part of an item added after training, regressed from its vector.

A trained SIDRec embeds a warm item as codes + projected vector + learned id part; an item
upserted later has no id row, so the item head scores it without that part, unlike every warm
item (the id part carries what the catalogue's history taught: popularity, co-purchase
structure). ``fit_stand_in`` fits a ridge regression from the
item's tokenizer vector (plus an intercept, the mean id part) to the learned id parts of the
warm items; ``SIDRec.item_table`` adds its prediction to every item without an id row. With no
vectors (``content_dim`` 0) the stand-in is the intercept alone: a new item is an average item.

The ridge strength is chosen by k-fold cross-validation of the regression error over the warm
items, so no cold item (nor any evaluation user) is looked at. On Beauty's cold-item run the
stand-in over-corrects (new items crowd warm users' lists without it and nearly vanish with
it); whether it is used is chosen on validation (``sidrec_eval.cold_items``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from models.recall.sidrec import SIDRec

log = logging.getLogger(__name__)

LAMBDAS = (1e-3, 1e-2, 0.1, 1.0, 10.0)  # ridge strengths tried, x the mean diagonal of x^T x
FOLDS = 5


class _Normal:
    """The centred normal equations of one fit: ridge weights for any strength from them
    (the Gram matrix is the costly part: computed once per fit, not once per strength)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.mx, self.my = x.mean(0), y.mean(0)
        xc = x - self.mx
        self.gram = xc.T @ xc
        self.xty = xc.T @ (y - self.my)
        self.scale = float(self.gram.diagonal().mean()) if x.shape[1] else 0.0

    def weights(self, lam: float) -> torch.Tensor:
        """[D + 1, d] weights (last row: intercept) of the ridge fit at strength ``lam``."""
        w = self.xty.new_zeros(self.xty.shape)
        if len(self.gram):
            ridge = lam * self.scale * torch.eye(len(self.gram), dtype=self.gram.dtype)
            w = torch.linalg.solve(self.gram + ridge, self.xty)
        return torch.cat([w, (self.my - self.mx @ w)[None]])


def _ridge(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """[D + 1, d] weights (last row: intercept) of a ridge fit of ``y`` on centred ``x``."""
    return _Normal(x, y).weights(lam)


def _cv_errors(x: torch.Tensor, y: torch.Tensor, lambdas: Sequence[float], folds: int
               ) -> dict[float, float]:
    """Mean squared error of held-out folds (rows in a fixed shuffled order), per strength."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    err = dict.fromkeys(lambdas, 0.0)
    for f in range(folds):
        test = order[f::folds]
        train = torch.ones(len(x), dtype=torch.bool)
        train[test] = False
        normal = _Normal(x[train], y[train])
        xt = torch.cat([x[test], x.new_ones(len(test), 1)], 1)
        for lam in lambdas:
            err[lam] += float(((xt @ normal.weights(lam) - y[test]) ** 2).sum())
    return {lam: e / len(x) for lam, e in err.items()}


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
    errors = _cv_errors(x, y, lambdas, folds)
    lam = min(errors, key=lambda k: errors[k])
    model.stand_in.copy_(_ridge(x, y, lam).to(model.stand_in.dtype))
    zero = float((y ** 2).sum(1).mean())
    out = {"lambda": lam, "cv_mse": round(errors[lam], 6), "zero_mse": round(zero, 6)}
    log.info("id stand-in: ridge %g over %d warm items, CV error %.4g (no id part: %.4g)",
             lam, len(rows), out["cv_mse"], zero)
    return out
