"""SIDRec's pieces: item embeddings (id part, cold rows), the SID head's log-probs, the loss."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from models.recall.sidrec import SeqBatch, SIDRec
from tests.fixtures.recall_models import tiny_sidrec


def test_an_item_without_an_id_row_is_embedded_by_its_codes_alone() -> None:
    rec = tiny_sidrec(held_out=frozenset({5}))
    model = rec.model
    with torch.no_grad():
        model.id_emb.weight.normal_()  # type: ignore[union-attr]
    head = rec.table.sids[3][:-1]  # item 5 arrives with item 3's content codes
    rec.add_known(5, (*head, rec.table.prefix_count[head]))
    table = model.item_table()
    id_part = model.id_emb.weight[3]  # type: ignore[union-attr]
    torch.testing.assert_close(table[3] - id_part, table[5])
    assert not bool(model.has_id[5]) and bool(model.has_id[3])


def test_a_new_item_is_embedded_by_its_vector_beside_its_codes() -> None:
    """With ``content``, two new items with the same content codes differ by their vectors
    (the projection of each one's own vector), not only by nothing."""
    rec = tiny_sidrec(held_out=frozenset({5, 6}), content=True)
    model = rec.model
    head = rec.table.sids[3][:-1]
    v5, v6 = torch.randn(2, model.cfg.content_dim)
    model.add_items(torch.tensor([5, 6]), torch.tensor([[*head, 7], [*head, 8]]), vectors=
                    torch.stack([v5, v6]))
    table = model.item_table()
    assert model.content is not None
    with torch.no_grad():
        torch.testing.assert_close(table[5] - table[6], model.content(v5 - v6))


def test_a_content_model_refuses_an_item_without_its_vector() -> None:
    model = tiny_sidrec(held_out=frozenset({5}), content=True).model
    with pytest.raises(ValueError, match="vectors"):
        model.add_items(torch.tensor([5]), torch.tensor([[0, 0, 0]]))


def test_id_drop_removes_id_parts_in_training_only() -> None:
    rec = tiny_sidrec(id_drop=1.0)
    model = rec.model
    with torch.no_grad():
        model.id_emb.weight.normal_()  # type: ignore[union-attr]
    codes_only = model.item_table(torch.zeros(model.n_rows, dtype=torch.bool))
    full = model.item_table()
    assert not torch.allclose(codes_only[1:], full[1:])
    batch = SeqBatch(torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]]))
    model.train()
    loss, _ = model.loss(batch)
    loss.backward()
    assert model.id_emb.weight.grad is None or not model.id_emb.weight.grad.any()  # type: ignore[union-attr]


def test_sid_log_probs_sum_to_one_over_every_sid() -> None:
    model = tiny_sidrec().model.eval()
    h = torch.randn(2, model.cfg.d_model)
    sids = torch.tensor(list(itertools.product(*(range(v) for v in model.cfg.vocab_sizes))))
    logp = model.sid_logp(h[:, None, :], sids.expand(2, -1, -1))
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(2))


def test_training_lowers_both_losses() -> None:
    rec = tiny_sidrec()
    model = rec.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    seq = torch.tensor([[(s + j) % 40 + 1 for j in range(6)] for s in range(40)])
    batch = SeqBatch(seq[:, :-1], seq[:, 1:])
    first = model.loss(batch)[1]
    for _ in range(60):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = model.loss(batch)[1]
    assert last["item"] < 0.5 * first["item"] and last["sid"] < 0.5 * first["sid"]


def _catalogue_rows(model: SIDRec) -> torch.Tensor:
    return model.present.nonzero().squeeze(-1)


def test_distillation_teaches_the_sid_head_the_item_heads_ranking() -> None:
    """The SID head learns the teacher's (item head's) ranking of its top items, not a flat
    set: the teacher's first item ends above its second for every state."""
    model = tiny_sidrec().model.train()
    model.cfg = dataclasses.replace(model.cfg, sid_distill=3)
    rows = _catalogue_rows(model)
    torch.manual_seed(1)
    h = torch.randn(6, model.cfg.d_model)
    logits = torch.full((6, model.n_rows), -20.0)
    first, second = rows[torch.randperm(len(rows))[:6]], rows[torch.randperm(len(rows))[:6]]
    logits[torch.arange(6), second] = 3.0
    logits[torch.arange(6), first] = 5.0  # where both draws agree, the first wins alone
    params = [*model.heads.parameters(), *model.prefix_emb.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(150):
        loss = model.distill_loss(h, logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    logp = model.sid_logp(h[:, None, :], model.codes[rows].expand(6, -1, -1))  # [6, items]
    best = rows[logp.argmax(1)]
    assert torch.equal(best, first)
    two = first != second
    gap = logp[two, (rows[None, :] == first[two, None]).int().argmax(1)] - \
        logp[two, (rows[None, :] == second[two, None]).int().argmax(1)]
    assert bool((gap > 0.5).all())  # ranked as the teacher does, not tied


def test_distillation_trains_the_sid_head_only() -> None:
    """The teacher's scores are a target: the distillation term must not move the encoder or
    the item table (the item head would learn to please the SID head)."""
    seq = torch.tensor([[(s + j) % 40 + 1 for j in range(6)] for s in range(40)])
    batch = SeqBatch(seq[:, :-1], seq[:, 1:])
    grads = []
    for k in (0, 4):
        model = tiny_sidrec().model.train()
        model.cfg = dataclasses.replace(model.cfg, sid_distill=k)
        loss, _ = model.loss(batch)
        loss.backward()
        grads.append([p.grad.clone() for p in (*model.blocks.parameters(),
                                               *model.code_emb.parameters()) if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
