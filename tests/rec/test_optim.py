"""LEARN's lazily updated id table: AdamW's update on the rows a step looks up, and nothing on the others; the
Polyak average of the weights, dense and lazy."""
import copy

import numpy as np
import pytest
import torch

from prodlens.rec import RecConfig
from prodlens.rec.registry import new_model
from prodlens.rec.optim import RecOptimizer, WeightAverage
from prodlens.rec.train import next_item_loss


def _model(n_items=40, lazy_above=0):
    rng = np.random.default_rng(0)
    cfg = RecConfig(model="learn", dim=16, lazy_ids_above=lazy_above, id_dropout=0.0, dropout=0.0)
    torch.manual_seed(0)
    model = new_model(cfg, n_items, rng.standard_normal((n_items, 8)).astype(np.float32))
    with torch.no_grad():  # ids start at zero: give them values, so a wrong update shows
        model.ids.weight.normal_()
    return model, cfg


def _steps(model, cfg, optimizer, batches, loss_fn):
    for seqs in batches:
        optimizer.zero_grad()
        loss_fn(model, seqs).backward()
        optimizer.clip_gradients(0.5)  # small: the clipping is active
        optimizer.step()


def test_lazy_and_dense_adamw_are_one_update_when_every_row_is_looked_up():
    model, cfg = _model()
    dense_model = copy.deepcopy(model)
    lazy = RecOptimizer(model, 1e-2, 0.01, cfg.lazy_ids_above)
    dense = RecOptimizer(dense_model, 1e-2, 0.01, lazy_above=10**9)
    assert lazy.lazy and not dense.lazy and model.ids.sparse
    candidates = torch.arange(40)
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rng.integers(0, 40, (8, 6))) for _ in range(5)]

    def loss(m, seqs):  # the full softmax: every item's id is looked up every step
        return next_item_loss(m, seqs, RecConfig(model="learn", loss="softmax"), rng, candidates, True)

    _steps(model, cfg, lazy, batches, loss)
    _steps(dense_model, cfg, dense, batches, loss)
    for (name, a), b in zip(model.named_parameters(), dense_model.parameters()):
        if name == "ids.weight":  # the last row, "no id", is never looked up: only AdamW's weight decay moves it
            a, b = a[:40], b[:40]
        if name.endswith("in_proj_bias"):  # the key bias's gradient is zero but for rounding, which Adam amplifies
            continue
        assert torch.allclose(a, b, atol=1e-6), name


def test_rows_a_step_does_not_look_up_keep_their_value_and_moments():
    model, cfg = _model()
    dense_model = copy.deepcopy(model)
    lazy = RecOptimizer(model, 1e-2, 0.0, cfg.lazy_ids_above)
    dense = RecOptimizer(dense_model, 1e-2, 0.0, lazy_above=10**9)
    first, second = torch.tensor([[1, 2, 3, 4]]), torch.tensor([[5, 6, 7, 8]])

    def loss(m, seqs):  # scores against items 10-19 only
        users = m.states(seqs)[:, -1]
        return -(users @ m.item_vectors(torch.arange(10, 20)).T).logsumexp(-1).sum()

    _steps(model, cfg, lazy, [first], loss)
    _steps(dense_model, cfg, dense, [first], loss)
    after_first = model.ids.weight.detach().clone()
    _steps(model, cfg, lazy, [second], loss)
    _steps(dense_model, cfg, dense, [second], loss)
    untouched = [1, 2, 3, 4]  # looked up in the first step only
    assert torch.equal(model.ids.weight[untouched], after_first[untouched])
    assert not torch.allclose(dense_model.ids.weight[untouched], after_first[untouched])  # momentum moved them
    assert not torch.equal(model.ids.weight[5:9], after_first[5:9])
    assert not torch.equal(model.ids.weight[10:20], after_first[10:20])
    assert torch.equal(model.ids.weight[20:], after_first[20:])  # never looked up


def test_the_optimizer_state_round_trips_and_an_adamw_state_saved_before_is_split(tmp_path):
    from prodlens.tensorfile import load_state, save_state

    model, cfg = _model()
    seqs = torch.tensor([[1, 2, 3, 4]])

    def loss(m, s):
        return m.states(s)[:, -1].sum() + m.item_vectors(torch.arange(10)).sum()

    # an older release: one AdamW over every weight, ids included
    old = torch.optim.AdamW(model.parameters(), lr=1e-2)
    old.zero_grad()
    loss(model, seqs).backward()
    old.step()
    save_state(tmp_path / "old", {"optimizer": old.state_dict()})
    resumed = RecOptimizer(model, 1e-2, 0.0, cfg.lazy_ids_above)
    resumed.load_state_dict(load_state(tmp_path / "old")["optimizer"])
    place = [i for i, p in enumerate(model.parameters()) if p is model.ids.weight][0]
    assert torch.equal(resumed.id_state["exp_avg"], old.state_dict()["state"][place]["exp_avg"])
    assert float(resumed.id_state["step"]) == 1
    assert len(resumed.dense.state_dict()["state"]) == len(old.state_dict()["state"]) - 1
    for p in model.parameters():  # every other weight keeps its own moments
        if p is not model.ids.weight and p in old.state:
            assert torch.equal(resumed.dense.state[p]["exp_avg_sq"], old.state[p]["exp_avg_sq"])

    _steps(model, cfg, resumed, [seqs], loss)
    save_state(tmp_path / "new", {"optimizer": resumed.state_dict()})
    again = RecOptimizer(model, 1e-2, 0.0, cfg.lazy_ids_above)
    again.load_state_dict(load_state(tmp_path / "new")["optimizer"])
    assert float(again.id_state["step"]) == 2
    assert torch.equal(again.id_state["exp_avg_sq"], resumed.id_state["exp_avg_sq"])


def test_small_catalogues_keep_one_adamw_over_every_weight():
    model, cfg = _model(lazy_above=RecConfig().lazy_ids_above)
    optimizer = RecOptimizer(model, 1e-3, 0.0, cfg.lazy_ids_above)
    assert not optimizer.lazy and not model.ids.sparse
    assert isinstance(optimizer.state_dict()["param_groups"], list)  # AdamW's own state dict, as saved before
    with pytest.raises(KeyError):
        optimizer.state_dict()["dense"]


def test_a_lazy_run_trains_and_resumes_where_it_stopped(tmp_path):
    from prodlens.embed import FeatureCache
    from prodlens.rec import evaluate_recommender
    from tests.rec.test_models import write_dataset

    dataset = write_dataset(tmp_path / "data")
    cache = FeatureCache(tmp_path / "cache")
    cfg = RecConfig(model="learn", dim=16, epochs=6, patience=6, lazy_ids_above=0)
    full = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "full", cache=cache, progress=False,
                                cold_start=False)
    assert full["metrics"]["R@10"] > 0.8
    evaluate_recommender(*dataset, RecConfig(**{**cfg.to_dict(), "epochs": 3}), out_dir=tmp_path / "part",
                         cache=cache, progress=False, cold_start=False)
    resumed = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "part", cache=cache, progress=False,
                                   cold_start=False, resume=True)
    assert resumed["metrics"] == full["metrics"]  # the id table's moments came back with the run


def _averaged_steps(model, cfg, optimizer, average, batches, loss_fn):
    for seqs in batches:
        optimizer.zero_grad()
        loss_fn(model, seqs).backward()
        optimizer.clip_gradients(0.5)
        average.before_step(optimizer.id_rows_to_step())
        optimizer.step()
        average.after_step()


def _partial_loss(m, seqs):  # scores against items 10-19 only: most id rows are not looked up by a step
    users = m.states(seqs)[:, -1]
    return -(users @ m.item_vectors(torch.arange(10, 20)).T).logsumexp(-1).sum()


def test_the_weight_average_is_the_exponential_moving_average_of_every_step():
    model, cfg = _model()
    optimizer = RecOptimizer(model, 1e-2, 0.0, lazy_above=10**9)
    average = WeightAverage(model, half_life_steps=2.0)
    decay = 0.5 ** 0.5
    expected = {name: p.detach().clone() for name, p in model.named_parameters()}
    rng = np.random.default_rng(0)
    for _ in range(4):
        _averaged_steps(model, cfg, optimizer, average, [torch.from_numpy(rng.integers(0, 40, (4, 5)))],
                        _partial_loss)
        for name, p in model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * p.detach()
    averaged = average.state_dict()
    for name, p in model.named_parameters():
        assert torch.allclose(averaged[name], expected[name], atol=1e-6), name
        if name in ("project.weight", "ids.weight"):
            assert not torch.allclose(averaged[name], p)  # the average lags the trained weights


def test_a_lazy_id_table_is_averaged_as_if_every_row_were_averaged_every_step():
    model, cfg = _model()
    lazy = RecOptimizer(model, 1e-2, 0.0, cfg.lazy_ids_above)
    lazy_average = WeightAverage(model, half_life_steps=3.0, lazy_ids=lazy.ids)
    dense_average = WeightAverage(model, half_life_steps=3.0)  # the whole table, every step: the reference
    batches = [torch.tensor([[1, 2, 3, 4]]), torch.tensor([[5, 6, 7, 8]]), torch.tensor([[1, 6, 30, 31]])] * 2
    for seqs in batches:
        lazy.zero_grad()
        _partial_loss(model, seqs).backward()
        lazy.clip_gradients(0.5)
        rows = lazy.id_rows_to_step()
        assert 0 < len(rows) < 40  # the step changes some rows, not the table
        lazy_average.before_step(rows)
        dense_average.before_step(None)
        lazy.step()
        lazy_average.after_step()
        dense_average.after_step()
    assert torch.allclose(lazy_average.state_dict()["ids.weight"], dense_average.state_dict()["ids.weight"],
                          atol=1e-6)


def test_a_run_with_weight_averaging_serves_the_average_and_resumes_where_it_stopped(tmp_path):
    from prodlens.embed import FeatureCache
    from prodlens.rec import evaluate_recommender
    from prodlens.runs import BEST, RunDir
    from tests.rec.test_models import write_dataset

    dataset = write_dataset(tmp_path / "data")
    cache = FeatureCache(tmp_path / "cache")
    cfg = RecConfig(model="learn", dim=16, epochs=6, patience=6, lazy_ids_above=0, ema_half_life=1.0, members=1)
    full = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "full", cache=cache, progress=False,
                                cold_start=False)
    assert full["metrics"]["R@10"] > 0.8
    best = RunDir(tmp_path / "full").load(BEST)
    assert not torch.equal(best["model"]["project.weight"], best["trained"]["project.weight"])
    evaluate_recommender(*dataset, RecConfig(**{**cfg.to_dict(), "epochs": 3}), out_dir=tmp_path / "part",
                         cache=cache, progress=False, cold_start=False)
    resumed = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "part", cache=cache, progress=False,
                                   cold_start=False, resume=True)
    assert resumed["metrics"] == full["metrics"]  # the average came back with the run, not restarted


def _gather_in_process(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from prodlens.rec.train import _gathered_rows

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    rows = [torch.tensor([0, 3, 3]), torch.tensor([3, 5])][rank]  # a row twice, a row in both, rows in one
    values = torch.arange(len(rows) * 2, dtype=torch.float32).view(-1, 2) + 10 * rank
    mean = _gathered_rows(torch.sparse_coo_tensor(rows[None], values, (8, 2)), world)
    torch.save(mean.to_dense(), f"{out}.{rank}")
    dist.destroy_process_group()


def test_sparse_row_gradients_are_averaged_over_processes(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "mean")
    mp.spawn(_gather_in_process, args=(2, f"file://{tmp_path / 'init'}", out), nprocs=2)
    dense = [torch.zeros(8, 2).index_add_(0, torch.tensor([0, 3, 3]), torch.arange(6.).view(3, 2)),
             torch.zeros(8, 2).index_add_(0, torch.tensor([3, 5]), torch.arange(4.).view(2, 2) + 10)]
    for rank in range(2):
        assert torch.equal(torch.load(f"{out}.{rank}"), (dense[0] + dense[1]) / 2)
