"""LEARN, SASRec and popularity trained for real on interactions whose structure lives in the item text."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError
from prodlens.rec import RecConfig, evaluate_recommender, load_rec_data

BIN = Path(sys.executable).parent
CATEGORIES = ["lipstick", "shampoo", "sunscreen", "perfume", "toothpaste", "nail polish"]
BRANDS = ["Acme", "Lumo", "Bella", "Norda", "Viva", "Kiro", "Tess", "Omni", "Pura", "Zest"]


def write_dataset(root: Path, users: int = 300, seed: int = 0) -> tuple[Path, Path]:
    """60 products in 6 categories; each user shops within one category, so the next item's category is
    predictable from the text of past items (and, for ids, from co-occurrence)."""
    rng = random.Random(seed)
    items = [(f"p{c}{b}", f"{BRANDS[b]} {CATEGORIES[c]} no. {b}", CATEGORIES[c])
             for c in range(len(CATEGORIES)) for b in range(len(BRANDS))]
    root.mkdir(parents=True, exist_ok=True)
    (root / "items.tsv").write_text("item_id\ttitle\tcategory\n" + "".join(f"{i}\t{t}\t{c}\n" for i, t, c in items))
    rows = ["user_id\titem_id\ttimestamp"]
    for u in range(users):
        c = rng.randrange(len(CATEGORIES))
        chosen = rng.sample([i for i, _, cat in items if cat == CATEGORIES[c]], rng.randint(4, 8))
        rows += [f"u{u}\t{item}\t{t}" for t, item in enumerate(chosen)]
    (root / "interactions.tsv").write_text("\n".join(rows) + "\n")
    return root / "interactions.tsv", root / "items.tsv"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("rec"))


def test_learn_beats_popularity_and_handles_cold_items(dataset, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    pop = evaluate_recommender(*dataset, RecConfig(model="pop"), progress=False)
    learn = evaluate_recommender(*dataset, RecConfig(model="learn", epochs=25, patience=25, dim=32),
                                 out_dir=tmp_path / "learn", cache=cache, progress=False)
    sasrec = evaluate_recommender(*dataset, RecConfig(model="sasrec", epochs=25, patience=25, dim=32),
                                  out_dir=tmp_path / "sasrec", progress=False)
    # random within a user's category (10 items) is R@10 ~ 1 after masking the history; across all 60 ~ 0.17
    assert pop["metrics"]["R@10"] < 0.35
    assert learn["metrics"]["R@10"] > 0.8 > pop["metrics"]["R@10"] + 0.3
    assert sasrec["metrics"]["R@10"] > pop["metrics"]["R@10"]
    bsarec = evaluate_recommender(*dataset, RecConfig(model="bsarec", epochs=25, patience=25, dim=32),
                                  out_dir=tmp_path / "bsarec", progress=False, cold_start=False)
    assert bsarec["metrics"]["R@10"] > pop["metrics"]["R@10"] + 0.3  # trained prefix by prefix, it learns too
    # items never seen in training: only content can place them
    assert learn["cold_start"]["n"] > 0 and learn["cold_start"]["R@10"] > 0.6
    assert pop["cold_start"]["R@10"] < 0.2 and learn["cold_start"]["R@10"] > pop["cold_start"]["R@10"] + 0.4
    assert "no content tower" in sasrec["cold_start"]["skipped"]  # ids only: a new item cannot be placed
    assert set(learn["metrics"]) >= {"R@10", "N@10", "R@20", "N@20"}
    assert 0 <= learn["metrics"]["N@10"] <= learn["metrics"]["R@10"] <= learn["metrics"]["R@20"] <= 1
    assert learn["long_tail"]["n"] + learn["head"]["n"] == learn["metrics"]["n"]
    assert (tmp_path / "learn" / "best.safetensors").exists()
    assert (tmp_path / "learn" / "cold-start" / "best.safetensors").exists()

    # the saved checkpoint reproduces the metrics without training
    again = evaluate_recommender(*dataset, RecConfig(model="learn"), checkpoint=tmp_path / "learn", progress=False)
    assert again["metrics"] == learn["metrics"] and again["cold_start"]["R@10"] == learn["cold_start"]["R@10"]
    again = evaluate_recommender(*dataset, RecConfig(model="bsarec"), checkpoint=tmp_path / "bsarec", progress=False,
                                 cold_start=False)
    assert again["metrics"] == bsarec["metrics"]
    # the served run ranks as the benchmark did (histories padded to the full length there too)
    from prodlens.rec import leave_one_out
    from prodlens.rec.evaluate import metrics_from_ranks
    from prodlens.rec.serve import Recommender

    data = load_rec_data(*dataset)
    cases = [([data.item_ids[i] for i in h], data.item_ids[t]) for _, h, t in leave_one_out(data).test]
    served = metrics_from_ranks(Recommender(tmp_path / "bsarec").target_ranks(cases))
    assert served["R@10"] == pytest.approx(bsarec["metrics"]["R@10"]) and served["n"] == bsarec["metrics"]["n"]


def test_training_resumes_where_it_stopped(dataset, tmp_path):
    cfg = RecConfig(model="sasrec", epochs=4, patience=10, dim=16, members=1)
    full = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "full", progress=False, cold_start=False)
    short = RecConfig(model="sasrec", epochs=2, patience=10, dim=16, members=1)
    evaluate_recommender(*dataset, short, out_dir=tmp_path / "part", progress=False, cold_start=False)
    resumed = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "part", progress=False, cold_start=False,
                                   resume=True)
    assert resumed["metrics"] == full["metrics"]
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    # another learning rate is another run: resuming would report the old one as if it were the new
    other = RecConfig(**{**cfg.to_dict(), "lr": 3e-3})
    with pytest.raises(ProdlensError, match=r"another configuration \(config.lr: 0.001 → 0.003\)"):
        evaluate_recommender(*dataset, other, out_dir=tmp_path / "part", progress=False, cold_start=False,
                             resume=True)
    # a run saved by an earlier release, before some settings existed, resumes with their defaults
    from prodlens.runs import LAST
    from prodlens.tensorfile import load_state, save_state

    state = load_state(tmp_path / "part" / LAST)
    for config in (state["config"], state["identity"]["config"]):
        for key in ("item_prior", "contrastive", "contrastive_positive"):
            del config[key]
    save_state(tmp_path / "part" / LAST, state)
    evaluate_recommender(*dataset, RecConfig(**{**cfg.to_dict(), "epochs": 5}), out_dir=tmp_path / "part",
                         progress=False, cold_start=False, resume=True)
    assert len((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) == 5
    # a fresh run in the same directory starts its log anew
    evaluate_recommender(*dataset, short, out_dir=tmp_path / "part", progress=False, cold_start=False)
    assert len((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) == 2


def test_the_lr_decays_after_each_plateau_of_validation(dataset, tmp_path):
    cfg = RecConfig(model="sasrec", epochs=12, patience=20, dim=16, lr=3e-3, lr_decay=0.5, lr_patience=2, members=1)
    evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "run", progress=False, cold_start=False)
    history = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best, stale, lr = -1.0, 0, cfg.lr
    for epoch in history:  # the lr logged with an epoch is the one it trained with
        assert epoch["lr"] == pytest.approx(lr)
        if epoch["R@10"] > best:
            best, stale = epoch["R@10"], 0
        else:
            stale += 1
            lr *= 0.5 if stale % 2 == 0 else 1.0
    assert min(h["lr"] for h in history) < cfg.lr  # the run did reach a plateau
    with pytest.raises(ValueError, match="lr_decay must be in"):
        RecConfig(lr_decay=0.0)


@pytest.mark.slow
def test_exact_command_form_and_recommend(dataset, tmp_path):
    interactions, items = dataset
    env = {**os.environ, "PRODLENS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    out = tmp_path / "out.json"
    proc = subprocess.run([str(BIN / "prodlens"), "rec", "eval", "--interactions", str(interactions), "--items",
                           str(items), "--model", "learn", "--json", str(out), "--out", str(tmp_path / "run"),
                           "--epochs", "15"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["metrics"]) >= {"R@10", "N@10", "R@20", "N@20"}
    assert {"R@10", "N@10"} <= set(data["cold_start"]) and {"R@10", "N@10"} <= set(data["long_tail"])
    assert "cold-start targets" in proc.stdout

    rec = subprocess.run([str(BIN / "prodlens"), "rec", "recommend", "--user", "u3", "--checkpoint",
                          str(tmp_path / "run"), "-k", "5", "--json"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert rec.returncode == 0, rec.stderr
    hits = json.loads(rec.stdout)["results"]
    data = load_rec_data(interactions, items)
    history = [data.item_ids[i] for i in data.sequences[data.user_ids.index("u3")]]
    category = next(t for i, t in zip(data.item_ids, data.item_texts) if i == history[0]).split(". ")[-1]
    assert len(hits) == 5 and not set(h["item_id"] for h in hits) & set(history)
    assert sum(category in h["title"] for h in hits) >= 2  # same-category products first (5 unseen at most)
    unknown = subprocess.run([str(BIN / "prodlens"), "rec", "recommend", "--user", "nobody", "--checkpoint",
                              str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert unknown.returncode != 0 and "unknown user" in unknown.stderr


@pytest.mark.slow
def test_full_softmax_stage_fine_tunes_the_best_model(dataset, tmp_path):
    import torch

    from prodlens.tensorfile import load_state, save_state

    cache = FeatureCache(tmp_path / "cache")
    in_batch = RecConfig(model="learn", loss="sampled", epochs=6, patience=10, dim=32, members=1)
    evaluate_recommender(*dataset, in_batch, out_dir=tmp_path / "run", cache=cache, progress=False, cold_start=False)
    # spoil the last in-batch weights: the full-softmax stage must start from the best checkpoint, not from these
    last = load_state(tmp_path / "run" / "last.safetensors")
    last["model"] = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in last["model"].items()}
    save_state(tmp_path / "run" / "last.safetensors", last)
    best = last["best"]
    staged = evaluate_recommender(*dataset, RecConfig(**{**in_batch.to_dict(), "full_softmax_epochs": 1}),
                                  out_dir=tmp_path / "run", cache=cache, progress=False, cold_start=False,
                                  resume=True)
    history = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert abs(history[-1]["R@10"] - best["R@10"]) < 0.05  # one epoch on from the best weights, not from noise
    assert staged["metrics"]["R@10"] > 0.8


def test_items_never_trained_on_are_scored_from_content_alone():
    import numpy as np
    import torch

    from prodlens.rec.registry import new_model

    rng = np.random.default_rng(0)
    content = rng.standard_normal((6, 8)).astype(np.float32)
    trained = np.array([True, True, True, True, False, False])
    model = new_model(RecConfig(model="learn", dim=16), 6, content, trained).eval()
    before = model.item_vectors().detach().clone()
    with torch.no_grad():
        model.ids.weight.add_(torch.randn_like(model.ids.weight))
    after = model.item_vectors().detach()
    assert torch.allclose(before[4:], after[4:])  # cold items: content only, whatever their id rows hold
    assert not torch.allclose(before[:4], after[:4])  # warm items: content + their id embedding
    content_only = new_model(RecConfig(model="learn", dim=16, item_ids=False), 6, content)
    assert not hasattr(content_only, "ids")


def test_the_item_prior_is_a_learned_score_per_item_carried_as_one_more_coordinate(dataset, tmp_path):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from prodlens.rec.data import cold_start_split
    from prodlens.rec.registry import new_model
    from prodlens.rec.serve import Recommender

    rng = np.random.default_rng(0)
    content = rng.standard_normal((6, 8)).astype(np.float32)
    trained = np.array([True, True, True, True, False, False])
    model = new_model(RecConfig(model="learn", dim=16, item_prior=True), 6, content, trained).eval()
    assert torch.equal(model.item_vectors()[:, -1], torch.zeros(6))  # it starts as the cosine model
    with torch.no_grad():
        model.prior.weight.normal_()
        model.prior.bias.fill_(0.5)
    seqs = torch.tensor([[6, 0, 1], [2, 3, 4]])
    users, items, scale = model.states(seqs)[:, -1], model.item_vectors(), model.logit_scale()
    assert torch.equal(users[:, -1], torch.ones(2))
    all_items = torch.arange(6)
    hidden = model.hidden(model.content_of(all_items)[:, None], all_items[:, None], torch.zeros(6, 1, dtype=bool),
                          dropout=False)[:, -1]
    cosines = F.normalize(users[:, :16], dim=-1) @ F.normalize(items[:, :16], dim=-1).T
    assert torch.allclose(scale * users @ items.T, scale * cosines + model.prior(hidden).T, atol=1e-5)
    assert items[4:, -1].abs().min() > 0  # items never trained on get a prior too, from their content

    # trained, and served on the run with items added after training: the benchmark's ranking
    inter, item_file = dataset
    cache = FeatureCache(tmp_path / "cache")
    result = evaluate_recommender(inter, item_file, RecConfig(model="learn", item_prior=True, epochs=8, patience=8,
                                                              dim=16, members=1), out_dir=tmp_path / "run",
                                  cache=cache, progress=False)
    assert result["metrics"]["R@10"] > 0.8
    rec = Recommender(tmp_path / "run" / "cold-start", cache=cache)
    assert rec.model.prior.weight.abs().sum() > 0  # it was trained
    data = load_rec_data(inter, item_file)
    cold = cold_start_split(data, 0.1, seed=0)
    ranks = rec.target_ranks([([data.item_ids[i] for i in h], data.item_ids[t]) for _, h, t in cold.test])
    assert float((ranks < 10).mean()) == result["cold_start"]["R@10"]


def test_the_contrastive_term_pairs_two_views_of_a_window_and_never_repels_windows_of_the_same_next_item(
        dataset, tmp_path):
    from collections import Counter

    import numpy as np
    import torch
    import torch.nn.functional as F

    from prodlens.rec.data import Sequences
    from prodlens.rec.train import Windows, contrastive_loss

    windows = Windows(Sequences.from_lists([[1, 2, 3], [4, 5, 3], [6, 3], [7, 8], [9, 8], [1, 2]]), 50)
    rows, rng, drawn = np.arange(6), np.random.default_rng(0), Counter()
    for _ in range(2000):
        picks = windows.same_target(rows, rng)
        assert (windows.items[windows.ends[picks] - 1] == windows.items[windows.ends - 1]).all()
        drawn.update(zip(rows.tolist(), picks.tolist()))
    assert set(drawn) == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3), (5, 5)}
    assert 850 < drawn[0, 1] < 1150  # uniform over the other windows; itself only when there is none

    first, second = torch.randn(4, 8), torch.randn(4, 8)
    last = torch.tensor([3, 3, 8, 2])
    cos = F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T * 20
    by_hand = 0.0
    for i in range(4):  # rows 0 and 1 share a next item: neither is the other's negative
        keep = [j for j in range(4) if j == i or last[j] != last[i]]
        by_hand += -torch.log_softmax(cos[i, keep], 0)[keep.index(i)] / 8
        by_hand += -torch.log_softmax(cos[keep, i], 0)[keep.index(i)] / 8
    assert torch.allclose(contrastive_loss(first, second, last), by_hand)

    for positive in ("dropout", "same-target"):
        result = evaluate_recommender(*dataset, RecConfig(model="learn", contrastive=0.1, contrastive_positive=positive,
                                                          epochs=8, patience=8, dim=16),
                                      out_dir=tmp_path / positive, cache=FeatureCache(tmp_path / "cache"),
                                      progress=False, cold_start=False)
        assert result["metrics"]["R@10"] > 0.8
    with pytest.raises(ValueError, match="contrastive: not a setting of bsarec"):  # the causal models' term
        RecConfig(model="bsarec", contrastive=0.1)


def test_served_top_k_is_the_exact_ranking_without_seen_or_retired_items():
    import numpy as np

    import torch

    from prodlens.rec.serve import top_k_unseen

    rng = np.random.default_rng(1)
    items = rng.standard_normal((5000, 32)).astype(np.float32)
    live = rng.random(5000) > 0.1
    users = rng.standard_normal((50, 32)).astype(np.float32)
    histories = [list(rng.integers(0, 5000, rng.integers(1, 40))) for _ in range(50)]
    cuts = [0, 1200, 1201, 4000, 5000]  # segments of the item table, one of a single row
    segments = [(a, torch.from_numpy(items[a:b]), torch.from_numpy(live[a:b])) for a, b in zip(cuts, cuts[1:])]
    hits = top_k_unseen(torch.from_numpy(users), segments, histories, 10, chunk=16)
    for user, history, row in zip(users, histories, hits):
        scores = items @ user
        scores[history] = -np.inf
        scores[~live] = -np.inf
        assert [i for i, _ in row] == list(np.argsort(-scores)[:10])


def test_settings_change_config_fields_by_name():
    from prodlens.rec.registry import REGISTRY

    cfg = RecConfig().with_settings(["dim=128", "loss=sampled", "encoder=e5-small"])
    assert (cfg.dim, cfg.loss, cfg.encoder) == (128, "sampled", "e5-small")
    with pytest.raises(ValueError, match="expected key=value"):
        RecConfig().with_settings(["dimension=128"])
    with pytest.raises(ValueError, match="loss must be one of"):
        RecConfig().with_settings(["loss=hinge"])
    # each model brings its own defaults for the fields left unset, also when a setting switches the model
    assert (RecConfig(model="sasrec").loss, RecConfig(model="learn").loss) == ("softmax", "uniform")
    switched = RecConfig(model="learn", dropout=0.3).with_settings(["model=sasrec", "layers=3"])
    assert (switched.loss, switched.layers, switched.heads) == ("softmax", 3, REGISTRY["sasrec"].defaults["heads"])
    # a checkpoint of the first format (SASRec's loss under its own name, LEARN without id embeddings) still loads
    old = RecConfig.from_dict({"model": "learn", "sasrec_loss": "ce", "dim": 32})
    assert (old.loss, old.item_ids) == ("sampled", False)
    # a setting given as an integer is the same run (the same run directory) as the default it equals
    from prodlens.runs import config_digest
    given = RecConfig(model="learn").with_settings(["ema_half_life=3"])
    assert config_digest(given.to_dict()) == config_digest(RecConfig(model="learn").to_dict())


def test_every_model_is_one_registry_entry_with_affordable_defaults():
    from prodlens.rec.registry import REGISTRY, RecModel, new_model

    content = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    for name, spec in REGISTRY.items():
        cfg = RecConfig(model=name)
        assert cfg.members == 1, name  # one training, one served vector width: ensembles are a setting
        if spec.trainable:
            model = new_model(cfg, 20, content if spec.content else None)
            assert isinstance(model, RecModel), name
            vectors = model.table_vectors(np.arange(3), content[:3] if spec.content else None)
            assert vectors.shape[0] == 3 and np.isfinite(vectors).all()
    assert RecConfig(model="learn").ema_half_life == 3.0 and RecConfig(model="sasrec").ema_half_life == 0.0
    assert (RecConfig(model="learn").patience, RecConfig(model="sasrec").patience) == (5, 10)
    assert [n for n, s in REGISTRY.items() if s.new_items] == ["learn"]
    # a setting the chosen model does not read is refused, not silently ignored
    with pytest.raises(ValueError, match="item_prior: not a setting of sasrec"):
        RecConfig(model="sasrec", item_prior=True)
    with pytest.raises(ValueError, match="contrastive: not a setting of bsarec"):
        RecConfig(model="bsarec", contrastive=0.1)
    with pytest.raises(ValueError, match="frequency_mix: not a setting of learn"):
        RecConfig(model="learn", frequency_mix=0.5)
    with pytest.raises(ValueError, match="loss bce is not learn's"):
        RecConfig(model="learn", loss="bce")
    with pytest.raises(ValueError, match="model must be one of"):
        RecConfig(model="gru4rec")


def test_positions_start_with_each_models_spread():
    import numpy as np

    from prodlens.rec.registry import new_model

    sasrec = new_model(RecConfig(model="sasrec"), n_items=50)
    learn = new_model(RecConfig(model="learn"), n_items=50, content=np.random.default_rng(0).normal(size=(50, 8)))
    # SASRec's as small as its item embeddings; LEARN's torch's N(0, 1)
    assert abs(float(sasrec.encoder.positions.weight.detach().std()) - 0.02) < 0.005
    assert abs(float(learn.encoder.positions.weight.detach().std()) - 1.0) < 0.2
    # a configuration saved before the setting existed records the N(0, 1) start it was trained from
    assert RecConfig.from_dict({"model": "sasrec"}).position_std == 1.0


def test_fused_attention_layers_compute_what_torch_transformer_layers_do():
    import torch
    from torch import nn

    from prodlens.rec.models import CausalEncoder

    torch.manual_seed(0)
    dim, heads, length = 32, 2, 7
    ours = CausalEncoder(dim, 2, heads, 0.0, 10).eval()
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True,
                                       norm_first=True, activation="gelu")
    torch_layers = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    torch_layers.load_state_dict(ours.layers.state_dict())  # same parameter names: earlier checkpoints load
    x = torch.randn(3, length, dim)
    pad = torch.zeros(3, length, dtype=torch.bool)
    pad[0, :3] = True
    blocked = torch.ones(length, length, dtype=torch.bool).triu(1).unsqueeze(0) | pad.unsqueeze(1)
    blocked &= ~torch.eye(length, dtype=torch.bool)
    with torch.no_grad():
        positions = ours.positions(torch.arange(10 - length, 10))
        want = ours.norm(torch_layers(x + positions, mask=blocked.repeat_interleave(heads, dim=0)))
        assert torch.allclose(ours(x, pad), want, atol=1e-5)
        single = torch.randn(4, 1, dim)  # one item alone: the item tower's shortcut
        want = ours.norm(torch_layers(single + positions[-1:], mask=torch.zeros(4 * heads, 1, 1, dtype=torch.bool)))
        assert torch.allclose(ours(single, torch.zeros(4, 1, dtype=torch.bool)), want, atol=1e-5)


def _bsarec_as_its_authors_compute_it(model, seqs):
    """BSARec's forward as its paper's code runs it: an FFT low pass, attention at every position with an additive
    -10000 mask, post-norm layers; the states at every position. One difference, ours: a padding position attends
    to itself (in that code all its keys are masked, so it attends to the whole sequence, later items included)."""
    import torch
    import torch.nn.functional as F

    n, dim, cutoff, alpha = model.n_items, model.cfg.dim, model.cfg.frequency_cutoff, model.cfg.frequency_mix
    length = seqs.shape[1]
    x = model.input_norm(model.items(seqs) + model.positions.weight)
    mask = torch.ones(length, length).tril().bool()[None] & (seqs != n)[:, None, :] | torch.eye(length).bool()
    for mix, feed_forward, norm in zip(model.mixes, model.feed_forwards, model.ff_norms):
        spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
        spectrum[:, cutoff // 2 + 1:, :] = 0
        low = torch.fft.irfft(spectrum, n=length, dim=1, norm="ortho")
        dsp = mix.filter_norm(low + mix.sqrt_beta ** 2 * (x - low) + x)
        heads = model.cfg.heads
        q, k, v = F.linear(x, mix.self_attn.in_proj_weight, mix.self_attn.in_proj_bias).chunk(3, -1)
        q, k, v = (t.view(len(x), length, heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / (dim // heads) ** 0.5 + (~mask[:, None]).float() * -10000.0
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(len(x), length, dim)
        gsp = mix.attn_norm(mix.self_attn.out_proj(attended) + x)
        x = alpha * dsp + (1 - alpha) * gsp
        x = norm(feed_forward(x) + x)
    return x


def test_bsarec_computes_its_authors_layers_on_each_whole_history():
    import torch

    from prodlens.rec.models import pad_left
    from prodlens.rec.registry import new_model

    torch.manual_seed(0)
    model = new_model(RecConfig(model="bsarec", dim=16, heads=2, max_len=12), n_items=30).eval()
    histories = [[3, 7, 1], [5, 2, 9, 11, 4, 8, 6], [29]]

    def padded(histories):  # as BSARec's code feeds them: left-padded to the full history length
        out = torch.full((len(histories), 12), 30)
        for r, h in enumerate(histories):
            out[r, 12 - len(h):] = torch.tensor(h)
        return out

    with torch.no_grad():
        ours = model.states(pad_left(histories, 12, 30))[:, -1]
        assert torch.allclose(ours, _bsarec_as_its_authors_compute_it(model, padded(histories))[:, -1], atol=1e-5)
        # the filter sees the whole padded history, so a state never depends on the batch it was computed in
        alone = model.states(pad_left(histories[:1], 12, 30))[:, -1]
        assert torch.allclose(alone, ours[:1], atol=1e-6)
        # not causal: in a whole history the state after its 4th item has seen the 5th, so training runs each
        # prefix alone, and a prefix's state is the same whatever follows it
        seqs = pad_left([[3, 7, 1, 5, 2]], 12, 30)
        per_prefix = model.prefix_states(seqs, seqs != 30)
        want = torch.cat([model.states(pad_left([[3, 7, 1, 5, 2][:t + 1]], 12, 30))[:, -1] for t in range(5)])
        assert torch.allclose(per_prefix, want, atol=1e-6)
        whole = _bsarec_as_its_authors_compute_it(model, padded([[3, 7, 1, 5, 2]]))[0, -2]
        assert torch.allclose(_bsarec_as_its_authors_compute_it(model, padded([[3, 7, 1, 5]]))[0, -1], want[3],
                              atol=1e-5)
        assert not torch.allclose(whole, want[3], atol=1e-3)
        other = pad_left([[3, 7, 1, 5, 9]], 12, 30)
        assert torch.allclose(model.prefix_states(other, other != 30)[:4], want[:4], atol=1e-6)


def test_uniform_sampled_softmax_is_the_softmax_over_the_positive_and_its_draws():
    import math

    import numpy as np
    import torch

    from prodlens.rec.registry import new_model
    from prodlens.rec.train import uniform_sampled_softmax

    torch.manual_seed(0)
    model = new_model(RecConfig(model="sasrec", dim=8), 5, None)
    candidates = torch.tensor([0, 2, 3])  # item 1 and 4 never trained on: never drawn
    users, wanted = torch.randn(4, 8), torch.tensor([0, 2, 3, 2])
    loss = uniform_sampled_softmax(model, users, wanted, candidates, 6, np.random.default_rng(7))
    drawn = candidates[torch.from_numpy(np.random.default_rng(7).integers(0, 3, (4, 6)))]
    table = model.item_vectors()
    want = []
    for user, target, row in zip(users, wanted, drawn):
        negatives = [int(i) for i in row if i != target]  # the positive drawn again is no negative
        logits = table[[int(target)] + negatives] @ user
        want.append(-(logits[0] - torch.logsumexp(logits, 0)))
    assert math.isclose(loss.item(), torch.stack(want).mean().item(), rel_tol=1e-5)

    # a large catalogue: the item tower runs on the step's items only, and the loss is the same
    big = new_model(RecConfig(model="sasrec", dim=8), 1000, None)
    every = torch.arange(1000)
    full = uniform_sampled_softmax(big, users, wanted, every, 6, np.random.default_rng(3))
    towered = []
    item_vectors = big.item_vectors
    big.item_vectors = lambda items=None: towered.append(len(items)) or item_vectors(items)
    part = uniform_sampled_softmax(big, users, wanted, every, 6, np.random.default_rng(3))
    assert towered and max(towered) <= 4 * 7 and math.isclose(part.item(), full.item(), rel_tol=1e-6)


def test_shared_sampled_softmax_draws_once_per_step_and_towers_only_the_step_items():
    import math

    import numpy as np
    import torch

    from prodlens.rec.registry import new_model
    from prodlens.rec.train import shared_sampled_softmax

    torch.manual_seed(0)
    model = new_model(RecConfig(model="sasrec", dim=8), 1000, None)
    candidates = torch.arange(0, 1000, 2)  # odd items never trained on: never drawn
    users, wanted = torch.randn(4, 8), torch.tensor([0, 2, 4, 2])
    towered = []
    item_vectors = model.item_vectors
    model.item_vectors = lambda items=None: towered.append(items) or item_vectors(items)
    loss = shared_sampled_softmax(model, users, wanted, candidates, 6, np.random.default_rng(7))
    drawn = candidates[torch.from_numpy(np.random.default_rng(7).integers(0, 500, 6))]
    assert len(towered) == 1 and set(towered[0].tolist()) == set(wanted.tolist()) | set(drawn.tolist())
    table = item_vectors()
    want = []
    for user, target in zip(users, wanted):
        negatives = [int(i) for i in drawn if i != target]  # every position the same draws, less its positive
        logits = table[[int(target)] + negatives] @ user
        want.append(-(logits[0] - torch.logsumexp(logits, 0)))
    assert math.isclose(loss.item(), torch.stack(want).mean().item(), rel_tol=1e-5)
    # a positive drawn as a negative is masked, never counted against itself
    forced = torch.full((3,), 2)
    one = shared_sampled_softmax(model, users[:3], forced, torch.tensor([2]), 4, np.random.default_rng(0))
    assert one.item() == 0.0


def test_learn_trains_its_logit_scale_and_older_runs_keep_theirs(dataset, tmp_path):
    from prodlens.rec.train import load_rec_checkpoint

    evaluate_recommender(*dataset, RecConfig(model="learn", loss="uniform", negatives=16, epochs=6, patience=6,
                                             dim=16, members=1), out_dir=tmp_path / "run",
                         cache=FeatureCache(tmp_path / "c"), progress=False, cold_start=False)
    model, cfg, _ = load_rec_checkpoint(tmp_path / "run")
    scale = model.logit_scale().item()
    assert cfg.learn_scale and abs(scale - cfg.scale) > 0.01 and scale <= 100
    # runs saved before the scale was learned keep the fixed one
    assert not RecConfig.from_dict({"model": "learn", "dim": 32}).learn_scale


def test_an_ensemble_trains_each_member_as_its_own_seed_and_serves_the_sum_of_their_scores(dataset, tmp_path):
    import numpy as np
    import torch

    from prodlens.rec import content_vectors, load_rec_checkpoint
    from prodlens.rec.models import Members, pad_left
    from prodlens.rec.serve import Recommender

    cache = FeatureCache(tmp_path / "cache")
    cfg = RecConfig(model="learn", dim=16, loss="uniform", negatives=16, epochs=3, patience=3, members=2)
    ensemble = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "ens", cache=cache, progress=False)
    evaluate_recommender(*dataset, RecConfig(**{**cfg.to_dict(), "members": 1, "seed": 1}),
                         out_dir=tmp_path / "seed1", cache=cache, progress=False, cold_start=False)
    assert len(ensemble["training"]["best_epoch"]) == 2 and ensemble["cold_start"]["R@10"] > 0
    model, saved, _ = load_rec_checkpoint(tmp_path / "ens")
    assert isinstance(model, Members) and saved.members == 2
    second, _, _ = load_rec_checkpoint(tmp_path / "ens" / "member-1")
    alone, _, _ = load_rec_checkpoint(tmp_path / "seed1")
    for (name, a), (_, b) in zip(second.state_dict().items(), alone.state_dict().items()):
        assert torch.equal(a, b), name  # member 1 is exactly the run with seed 1
    rec = Recommender(tmp_path / "ens", cache=cache)
    data = load_rec_data(*dataset)
    history = [data.item_ids[i] for i in data.sequences[0][:3]]
    content = content_vectors(data.item_ids, data.item_texts, cfg.encoder, cache, progress=False)
    members = [load_rec_checkpoint(tmp_path / "ens" / f"member-{i}")[0].attach(content) for i in range(2)]
    seqs = pad_left([[data.item_ids.index(i) for i in history]], 50, data.n_items)
    with torch.inference_mode():
        summed = sum(m.states(seqs)[:, -1] @ (m.item_vectors() * m.logit_scale()).T
                     for m in members)[0]
        summed[[data.item_ids.index(i) for i in history]] = -torch.inf
    served = rec.recommend_history(history, k=5)
    assert [r["item_id"] for r in served] == [data.item_ids[i] for i in np.argsort(-summed.numpy())[:5]]
    assert np.allclose([r["score"] for r in served], np.sort(summed.numpy())[::-1][:5], atol=1e-4)
    with pytest.raises(ValueError, match="members"):
        RecConfig(members=0)


def test_an_id_model_ensemble_is_served_as_its_members_summed(dataset, tmp_path):
    import torch

    from prodlens.rec import load_rec_checkpoint
    from prodlens.rec.models import pad_left
    from prodlens.rec.serve import Recommender

    cfg = RecConfig(model="sasrec", dim=16, epochs=2, patience=2, members=2)
    result = evaluate_recommender(*dataset, cfg, out_dir=tmp_path / "ens", progress=False, cold_start=False)
    data = load_rec_data(*dataset)
    members = [load_rec_checkpoint(tmp_path / "ens" / f"member-{i}")[0] for i in range(2)]
    cases = [(list(data.sequences[u][:-1]), data.sequences[u][-1]) for u in range(40)]
    seqs = pad_left([h for h, _ in cases], 50, data.n_items)
    with torch.inference_mode():
        summed = sum(m.states(seqs)[:, -1] @ m.item_vectors().T for m in members)
    rec = Recommender(tmp_path / "ens")
    ranks = rec.target_ranks([([data.item_ids[i] for i in h], data.item_ids[t]) for h, t in cases])
    for (history, target), rank, row in zip(cases, ranks, summed):
        row = row.clone()
        row[[i for i in history if i != target]] = -torch.inf
        assert rank == int((row > row[target]).sum())
    assert result["metrics"]["n"] == data.summary()["users"]


@pytest.mark.slow
@pytest.mark.parametrize("lazy_above", [RecConfig.lazy_ids_above, 0])
def test_torchrun_trains_learn_data_parallel(dataset, tmp_path, lazy_above):
    """Two processes share every epoch of LEARN's default (gradients averaged; a lazily updated id table's rows
    gathered from both; the weight average kept the same in both); rank 0 validates, writes and evaluates."""
    interactions, items = dataset
    env = {**os.environ, "PRODLENS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "COLUMNS": "200"}
    out = tmp_path / "out.json"
    proc = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "prodlens", "rec", "eval",
                           "--interactions", str(interactions), "--items", str(items), "--out", str(tmp_path / "run"),
                           "--json", str(out), "--epochs", "12", "--set", "dim=32", "--set", "patience=12",
                           "--set", f"lazy_ids_above={lazy_above}"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["metrics"]["R@10"] > 0.8 and result["cold_start"]["R@10"] > 0.6
    assert proc.stdout.count("all (leave-one-out)") == 1  # one report, from rank 0
    # the run written once (by rank 0): one line per epoch
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 12
    assert result["training"]["epochs_run"] == 12


def test_training_windows_and_memory_mapped_content_match_the_in_memory_forms(tmp_path):
    import numpy as np
    import torch

    from prodlens.rec.data import Sequences
    from prodlens.rec.models import pad_left
    from prodlens.rec.registry import new_model
    from prodlens.rec.train import Windows

    lists = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 3], [4, 4, 4]]
    windows = Windows(Sequences.from_lists(lists), max_len=3)
    assert len(windows) == 3 and windows.positions(np.arange(3)) == 3 + 1 + 2  # a single item predicts nothing
    kept = [s[-4:] for s in lists if len(s) >= 2]
    assert torch.equal(windows.batch(np.arange(3), 99), pad_left(kept, 4, 99))
    assert windows.trained_items(10).tolist() == [i in {3, 4, 5, 6, 7, 9} for i in range(10)]

    rng = np.random.default_rng(0)
    content = rng.standard_normal((20, 8)).astype(np.float32) * 3 + 1
    np.save(tmp_path / "content.npy", content)
    mapped = np.load(tmp_path / "content.npy", mmap_mode="r")
    torch.manual_seed(0)
    in_memory = new_model(RecConfig(model="learn", dim=16), 20, content).eval()
    torch.manual_seed(0)
    on_disk = new_model(RecConfig(model="learn", dim=16), 20, mapped).eval()
    assert torch.allclose(in_memory.content_std, on_disk.content_std, atol=1e-5)
    seqs = torch.tensor([[20, 3, 4], [1, 2, 19]])
    assert torch.allclose(in_memory.states(seqs), on_disk.states(seqs), atol=1e-5)
    assert torch.allclose(in_memory.item_vectors(), on_disk.item_vectors(), atol=1e-5)
