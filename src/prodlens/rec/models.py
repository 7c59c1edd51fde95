"""Sequential recommenders that score every item for a user history:

- LEARN (arXiv 2405.03988) preference comprehension: frozen content vectors → linear adapter → causal transformer
  over the history → user vector at the last position; the item tower is the same adapter + transformer applied to
  the item alone (shared weights). Scores are cosines × scale. With `item_ids` (the default) the adapter also adds a
  learned id embedding for every item seen in training (a content + id hybrid); items never trained on keep the
  content alone, and `id_dropout` trains the content-only path on warm items too, so the two stay comparable.
- SASRec (Kang & McAuley 2018): item-id embeddings + the same causal transformer; scores are dot products with the
  item embeddings.
- BSARec (Shin et al., AAAI 2024, arXiv 2312.10325): SASRec's item ids and dot products, with every layer's
  self-attention mixed with a frequency filter over the history (a low pass plus a learned rescaling of the high
  frequencies). The filter sees the whole padded history, so the model is not causal: it is trained on every prefix
  of a window separately (`causal = False`) and always runs on histories padded to `max_len`.
- Popularity: training frequency.
- `Members`: an ensemble of `members` models of one kind, trained one after another with seeds seed, seed + 1, ...;
  its user and item vectors are the members' side by side, so a score stays one dot product.

Histories are left-padded to `max_len`, so the most recent item is always at the last position.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import RecConfig

class SelfAttention(nn.Module):
    """Multi-head self-attention on torch's fused scaled_dot_product_attention (parameter names as
    nn.MultiheadAttention's, so checkpoints of either load)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None, dropout: float,
                last_only: bool = False) -> torch.Tensor:
        """`last_only`: the output at the last position alone, (B, 1, D)."""
        b, length, dim = x.shape
        if length == 1:  # one token attends to itself alone: the attention output is its value
            v = F.linear(x, self.in_proj_weight[2 * dim:], self.in_proj_bias[2 * dim:])
            return self.out_proj(v)
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, length, 3, self.heads, -1).unbind(2)
        if last_only:
            q, allowed = q[:, -1:], allowed[:, :, -1:]
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=allowed, dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(b, q.shape[1], dim))


class Block(nn.Module):
    """A pre-norm transformer layer (nn.TransformerEncoderLayer(norm_first=True, activation="gelu")'s computation)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1, self.linear2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None, p: float) -> torch.Tensor:
        x = x + F.dropout(self.self_attn(self.norm1(x), allowed, p), p, self.training)
        hidden = F.dropout(F.gelu(self.linear1(self.norm2(x))), p, self.training)
        return x + F.dropout(self.linear2(hidden), p, self.training)


def causal_mask(pad: torch.Tensor) -> torch.Tensor:
    """(B, L) padding → (B, 1, L, L) keys each position may attend to: earlier, non-padding ones, and itself (so a
    row is never empty)."""
    length = pad.shape[1]
    allowed = torch.ones(length, length, dtype=torch.bool, device=pad.device).tril().unsqueeze(0) & ~pad.unsqueeze(1)
    return (allowed | torch.eye(length, dtype=torch.bool, device=pad.device)).unsqueeze(1)


class CausalEncoder(nn.Module):
    """Positions + pre-norm transformer layers with a causal mask that also hides padding."""

    def __init__(self, dim: int, layers: int, heads: int, dropout: float, max_len: int, position_std: float = 1.0):
        super().__init__()
        self.positions = nn.Embedding(max_len, dim)  # torch's start: N(0, 1)
        if position_std != 1.0:  # redrawn only when asked, so models of the N(0, 1) start reproduce bit for bit
            nn.init.normal_(self.positions.weight, std=position_std)
        self.layers = nn.Module()  # named as nn.TransformerEncoder's, so earlier checkpoints load
        self.layers.layers = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.p = dropout

    def forward(self, x: torch.Tensor, pad: torch.Tensor, dropout: bool = True) -> torch.Tensor:
        """`dropout=False`: no dropout even in training (LEARN's item tower, like SASRec's output embeddings)."""
        b, length, _ = x.shape
        p = self.p if self.training and dropout else 0.0
        pos = torch.arange(self.positions.num_embeddings - length, self.positions.num_embeddings, device=x.device)
        x = F.dropout(x + self.positions(pos), p, self.training)
        allowed = causal_mask(pad) if length > 1 else None
        for layer in self.layers.layers:
            x = layer(x, allowed, p)
        return self.norm(x)


class LEARN(nn.Module):
    """The content vectors are not part of the model: they live in the run's item table (a tensor or a memory-mapped
    array, `attach`ed), so items can be added without touching the weights. The model keeps the per-dimension
    standardisation it was trained with, and an id embedding slot for each item of its training catalogue."""

    causal = True

    def __init__(self, cfg: RecConfig, n_items: int, content_dim: int, trained: np.ndarray | None = None):
        super().__init__()
        self.cfg = cfg
        self.n_items = n_items  # the training catalogue; slot n_items is "no id" (padding and items added later)
        self.table = None
        self.legacy_content = False  # set when loaded from a checkpoint that stored standardised content
        # LLM hidden states are far from isotropic: the content is standardised per dimension, with the training
        # catalogue's statistics (kept, so items added later are standardised the same way)
        self.register_buffer("content_mean", torch.zeros(content_dim))
        self.register_buffer("content_std", torch.ones(content_dim))
        has_id = torch.zeros(n_items + 1, dtype=torch.bool)
        has_id[:n_items] = True if trained is None else torch.as_tensor(trained, dtype=torch.bool)
        self.register_buffer("has_id", has_id)  # only items seen in training get an id embedding
        self.project = nn.Linear(content_dim, cfg.dim)
        if cfg.item_ids:
            # Ids start at zero: the model starts as content-only and an id learns a correction only as far as its
            # item's interactions support one. A random start leaves rare items with noise they never unlearn.
            self.ids = nn.Embedding(n_items + 1, cfg.dim)
            nn.init.zeros_(self.ids.weight)
        self.norm = nn.LayerNorm(cfg.dim)
        self.encoder = CausalEncoder(cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len, cfg.position_std)
        self.head = nn.Linear(cfg.dim, cfg.out_dim or cfg.dim)
        if cfg.item_prior:
            self.prior = nn.Linear(cfg.dim, 1)  # starts at zero: the model starts as the cosine model
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)
        if cfg.learn_scale:
            self.log_scale = nn.Parameter(torch.tensor(math.log(cfg.scale)))

    def attach(self, content, fit: bool = False) -> "LEARN":
        """The training catalogue's raw content vectors, (n_items, content_dim): a tensor or an array (memory-mapped
        arrays are read row by row). `fit`: take the standardisation from them (a new model)."""
        if content.shape[0] != self.n_items:
            raise ValueError(f"{content.shape[0]} content vectors for a catalogue of {self.n_items} items")
        if isinstance(content, np.ndarray) and not isinstance(content, np.memmap):
            content = torch.from_numpy(np.ascontiguousarray(content, np.float32))  # in memory: gather as a tensor
        if fit and isinstance(content, torch.Tensor):
            self.content_mean.copy_(content.mean(0))
            self.content_std.copy_(content.std(0).clamp(min=1e-6))
        elif fit:  # memory-mapped: the statistics in chunks, never the whole table in memory
            total, squares = np.zeros(content.shape[1]), np.zeros(content.shape[1])
            for start in range(0, len(content), 65536):
                chunk = np.asarray(content[start:start + 65536], np.float64)
                total += chunk.sum(0)
                squares += (chunk ** 2).sum(0)
            mean = total / len(content)
            var = (squares - len(content) * mean ** 2) / max(len(content) - 1, 1)
            self.content_mean.copy_(torch.from_numpy(mean))
            self.content_std.copy_(torch.from_numpy(np.sqrt(np.maximum(var, 0))).clamp(min=1e-6))
        self.table = content
        return self

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.content_mean) / self.content_std

    def content_of(self, seqs: torch.Tensor) -> torch.Tensor:
        """Standardised content of the attached catalogue's items (zeros at padding), shaped like `seqs` + (D,)."""
        if self.table is None:
            raise ValueError("LEARN has no content attached")
        flat = seqs.reshape(-1)
        pad = flat >= self.n_items
        idx = flat.clamp(max=self.n_items - 1)
        if isinstance(self.table, torch.Tensor):
            rows = self.table[idx.to(self.table.device)].to(flat.device)
        else:
            rows = torch.from_numpy(np.asarray(self.table[idx.cpu().numpy()], np.float32)).to(flat.device)
        x = self.standardise(rows).masked_fill(pad[:, None], 0.0)
        return x.view(*seqs.shape, -1)

    def hidden(self, content: torch.Tensor, slots: torch.Tensor, pad: torch.Tensor,
               dropout: bool = True) -> torch.Tensor:
        """(B, L, D) standardised content, (B, L) id slots (n_items: none), (B, L) padding → (B, L, dim) states
        before the output head."""
        x = self.project(content)
        if self.cfg.item_ids:
            keep = self.has_id[slots]
            if self.training and self.cfg.id_dropout > 0:
                keep = keep & (torch.rand(slots.shape, device=slots.device) >= self.cfg.id_dropout)
            x = x + self.ids(slots) * keep.unsqueeze(-1)
        return self.encoder(self.norm(x), pad, dropout)

    def encode(self, content: torch.Tensor, slots: torch.Tensor, pad: torch.Tensor,
               dropout: bool = True) -> torch.Tensor:
        """User states, (B, L, vector_dim): normalised (and a constant 1 that meets the items' prior)."""
        users = F.normalize(self.head(self.hidden(content, slots, pad, dropout)), dim=-1)
        if self.cfg.item_prior:
            users = torch.cat([users, users.new_ones(*users.shape[:-1], 1)], -1)
        return users

    @property
    def vector_dim(self) -> int:
        return self.head.out_features + int(self.cfg.item_prior)

    def states(self, seqs: torch.Tensor, dropout: bool = True) -> torch.Tensor:
        """(B, L) item indices of the training catalogue (n_items = padding) → (B, L, out_dim) user states."""
        return self.encode(self.content_of(seqs), seqs, seqs == self.n_items, dropout)

    def tower(self, content: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """The item tower: each item alone through the same adapter + transformer. No dropout here (as SASRec's
        output embeddings have none): it would only add noise to every negative, and on CPU it is most of the
        tower's cost; the id dropout, which trains the content-only path, stays."""
        out = []
        for i in range(0, len(slots), 8192):
            hidden = self.hidden(content[i:i + 8192, None], slots[i:i + 8192, None],
                                 torch.zeros(len(slots[i:i + 8192]), 1, dtype=torch.bool, device=slots.device),
                                 dropout=False)[:, -1]
            items = F.normalize(self.head(hidden), dim=-1)
            out.append(torch.cat([items, self.prior(hidden) / self.logit_scale()], -1) if self.cfg.item_prior
                       else items)
        return torch.cat(out) if out else content.new_zeros(0, self.vector_dim)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        if items is None:
            items = torch.arange(self.n_items, device=self.content_mean.device)
        return self.tower(self.content_of(items), items)

    def user_vectors(self, slots: torch.Tensor, pad: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        """The user state after left-padded histories given by standardised content and id slots."""
        return self.encode(content, slots, pad)[:, -1]

    def logit_scale(self) -> float | torch.Tensor:
        if self.cfg.learn_scale:
            return self.log_scale.clamp(max=math.log(100.0)).exp()
        return self.cfg.scale

    def table_vectors(self, slots: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        """The item table's vectors (× the logit scale) of items given by raw content and id slots (-1: none)."""
        with torch.inference_mode():
            std = self.standardise(torch.from_numpy(np.asarray(content, np.float32)))
            slots = torch.from_numpy(np.where(np.asarray(slots) < 0, self.n_items, slots))
            return (self.tower(std, slots) * self.logit_scale()).numpy()


class IdItems:
    """The item side of the id models (SASRec, BSARec): an item is its id embedding (`self.items`, padding last),
    scored by dot products."""

    @property
    def n_items(self) -> int:
        return self.items.num_embeddings - 1

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        w = self.items.weight[: self.n_items]
        return w if items is None else w[items]

    def logit_scale(self) -> float:
        return 1.0

    def table_vectors(self, slots: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        """The item table's vectors: the id embeddings of the slots (every item of the table was trained on)."""
        with torch.inference_mode():
            return self.item_vectors(torch.from_numpy(np.asarray(slots, np.int64))).numpy()


class SASRec(IdItems, nn.Module):
    causal = True  # a position's state depends on earlier positions only: every position trains at once

    def __init__(self, n_items: int, cfg: RecConfig):
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(n_items + 1, cfg.dim, padding_idx=n_items)
        nn.init.normal_(self.items.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[n_items].zero_()
        self.encoder = CausalEncoder(cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len, cfg.position_std)

    def states(self, seqs: torch.Tensor) -> torch.Tensor:
        pad = seqs == self.n_items
        return self.encoder(self.items(seqs) * self.cfg.dim ** 0.5, pad)

    def user_vectors(self, slots: torch.Tensor, pad: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        return self.encoder(self.items(slots) * self.cfg.dim ** 0.5, pad)[:, -1]


class FrequencyMix(nn.Module):
    """BSARec's layer: α × (low pass + β² × high pass of the sequence, dropout, residual, norm) + (1 - α) ×
    (self-attention, dropout, residual, norm). The low pass (the `cutoff` // 2 + 1 lowest frequencies of an
    orthonormal real FFT over the positions) is one fixed (L, L) matrix: a matmul, cheaper on CPU than the FFT pair."""

    def __init__(self, dim: int, heads: int, length: int, cutoff: int, mix: float):
        super().__init__()
        spectrum = torch.fft.rfft(torch.eye(length, dtype=torch.float64), dim=0, norm="ortho")
        spectrum[cutoff // 2 + 1:] = 0
        self.register_buffer("low_pass", torch.fft.irfft(spectrum, n=length, dim=0, norm="ortho").float(),
                             persistent=False)
        self.sqrt_beta = nn.Parameter(torch.randn(1, 1, dim))  # BSARec's start: N(0, 1)
        self.self_attn = SelfAttention(dim, heads)
        self.filter_norm, self.attn_norm = nn.LayerNorm(dim, eps=1e-12), nn.LayerNorm(dim, eps=1e-12)
        self.mix = mix

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, p: float, last_only: bool = False) -> torch.Tensor:
        """`last_only`: the output at the last position alone, (B, 1, D) (all a model's last layer needs)."""
        attended = self.self_attn(x, allowed, p, last_only)
        low = torch.einsum("ts,bsd->btd", self.low_pass[-1:] if last_only else self.low_pass, x)
        if last_only:
            x = x[:, -1:]
        filtered = self.filter_norm(x + F.dropout(low + self.sqrt_beta ** 2 * (x - low), p, self.training))
        return self.mix * filtered + (1 - self.mix) * self.attn_norm(x + F.dropout(attended, p, self.training))


class BSARec(IdItems, nn.Module):
    """BSARec's post-norm layers (FrequencyMix, then a GELU feed-forward with residual and norm) over item-id and
    position embeddings (summed, normalised, dropped out); every weight starts at N(0, 0.02) as in its authors' code."""

    causal = False  # the filter mixes every position: trained prefix by prefix (prodlens.rec.train)

    def __init__(self, n_items: int, cfg: RecConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.dim
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.positions = nn.Embedding(cfg.max_len, dim)
        self.input_norm = nn.LayerNorm(dim, eps=1e-12)
        self.mixes = nn.ModuleList([FrequencyMix(dim, cfg.heads, cfg.max_len, cfg.frequency_cutoff,
                                                 cfg.frequency_mix) for _ in range(cfg.layers)])
        self.feed_forwards = nn.ModuleList([nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
                                            for _ in range(cfg.layers)])
        self.ff_norms = nn.ModuleList([nn.LayerNorm(dim, eps=1e-12) for _ in range(cfg.layers)])
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.positions.weight, std=cfg.position_std)
        for mix in self.mixes:
            nn.init.normal_(mix.self_attn.in_proj_weight, std=0.02)
        with torch.no_grad():
            self.items.weight[n_items].zero_()

    def states(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item indices → (B, 1, D), the state after the whole history: the only one there is,
        since an earlier position's state would have seen later items. Always computed over the history padded to
        `max_len` (the filter sees the padding), so a history's state never depends on the others in its batch."""
        seqs = seqs[:, -self.cfg.max_len:]
        if seqs.shape[1] < self.cfg.max_len:
            seqs = F.pad(seqs, (self.cfg.max_len - seqs.shape[1], 0), value=self.n_items)
        pad = seqs == self.n_items
        p = self.cfg.dropout if self.training else 0.0
        x = F.dropout(self.input_norm(self.items(seqs) + self.positions.weight), p, self.training)
        allowed = causal_mask(pad)
        for layer, (mix, feed_forward, norm) in enumerate(zip(self.mixes, self.feed_forwards, self.ff_norms)):
            x = mix(x, allowed, p, last_only=layer == len(self.mixes) - 1)
            x = norm(x + F.dropout(feed_forward(x), p, self.training))
        return x[:, -1:]

    def prefix_states(self, seqs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The state after each prefix of `seqs` ending at a `valid` position, each prefix run on its own (M, D)."""
        rows, ends = valid.nonzero(as_tuple=True)
        columns = ends[:, None] + torch.arange(1 - self.cfg.max_len, 1, device=seqs.device)[None, :]
        prefixes = torch.where(columns >= 0, seqs[rows[:, None], columns.clamp(min=0)], self.n_items)
        return self.states(prefixes)[:, -1]

    def user_vectors(self, slots: torch.Tensor, pad: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        return self.states(slots.masked_fill(pad, self.n_items))[:, -1]


class Members(nn.Module):
    """An ensemble served as one model: user vectors are the members' side by side, item vectors too, each member's
    × its logit scale, so a score is the sum of the members' logits and still one dot product (exact, batched or
    ANN). Members are trained on their own (prodlens.rec.train.fit_recommender); this module only scores. The
    members of a LEARN ensemble share the content (the same standardisation: they were fitted on the same table)."""

    def __init__(self, cfg: RecConfig, members: list[nn.Module]):
        super().__init__()
        if len(members) != cfg.members:
            raise ValueError(f"{len(members)} models for an ensemble of {cfg.members}")
        self.cfg = cfg
        self.members = nn.ModuleList(members)
        self.causal = members[0].causal

    @property
    def n_items(self) -> int:
        return self.members[0].n_items

    @property
    def table(self):
        return self.members[0].table

    @property
    def legacy_content(self) -> bool:
        return False

    def attach(self, content, fit: bool = False) -> "Members":
        for member in self.members:
            member.attach(content, fit)
        return self

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        return self.members[0].standardise(raw)

    def logit_scale(self) -> float:
        return 1.0  # each member's scale is in its item vectors

    def states(self, seqs: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.states(seqs) for m in self.members], -1)

    def user_vectors(self, slots: torch.Tensor, pad: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([m.user_vectors(slots, pad, content) for m in self.members], -1)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([m.item_vectors(items) * m.logit_scale() for m in self.members], -1)

    def tower(self, content: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """LEARN's item tower of every member, side by side."""
        return torch.cat([m.tower(content, slots) * m.logit_scale() for m in self.members], -1)

    def table_vectors(self, slots: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        return np.concatenate([m.table_vectors(slots, content) for m in self.members], -1)


def pad_left(histories: list[list[int]], max_len: int, pad: int) -> torch.Tensor:
    """Left-padded (B, L) indices, L = the longest history in the batch (at most max_len): positions count from
    the end, so trimming shared padding changes nothing but the cost."""
    max_len = max(1, min(max_len, max((len(h) for h in histories), default=1)))
    out = np.full((len(histories), max_len), pad, dtype=np.int64)
    for r, h in enumerate(histories):
        h = h[-max_len:]
        if len(h):
            out[r, max_len - len(h):] = h
    return torch.from_numpy(out)
