"""Which product does the evidence of a clip support? Product identity decided by corroboration, not by the last
claim made in the speech.

Candidate mentions are the runs of name words in the kept clauses and the title (`extractive.mention_runs`:
"today we got the | oatly oat drink barista edition | one liter"). Each candidate is scored by what corroborates it:

- the listing title: it shares a content word with the title (or the title is its source);
- repeated, independent mentions: its distinctive words occur in more than one clause;
- how the host presents it: "this is the ...", "today i show you ..." and being the first product brought up
  count for it; an aside ("tomorrow maybe the
  ...", "unlike the ...") or a bare identity claim ("... should be listed as a ...", "the brand is ...") against it;
- the detector's probability that its clause speaks to a machine (`detector`), even under the flagging threshold;
- the frames: with a visual vector of the clip in the text encoder's space (zero-shot: the ConSE bridge of the
  frames; or a trained model's projection), its similarity to the candidate relative to the best candidate's;
- the text read in the frames (OCR: the pack, the product card): a candidate whose brand-like word is printed there
  (letter-for-letter up to OCR's misreads) is corroborated; when the frames' text corroborates one candidate, a
  candidate it does not show, and that the title does not support, is contradicted;
- product-likeness: the text encoder's similarity to generic goods minus stream chatter, a bonus for names the
  tokenizer does not know (brands are made-up words).

A candidate mentioned once that the title or the frames contradict (the title names another product, or the frames
are clearly closer to another candidate), or one the frames' text contradicts however often it is said, is
*ineligible*: it never becomes product_name or brand, and its words
are blocked from every output field. The winner is the best eligible candidate; LLM backends are given the eligible
candidates and choose among them (grammar-constrained where the engine allows). Other product-like candidates that
share nothing with the winner or the title are *rivals* (another product presented or claimed, a mention in a clause
that half-sounds like speech to a machine): their distinctive words are blocked from the summary and category too,
so the facts describe one product.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .injection import _HAS_CJK, _IDENTITY_CLAIM, has_cjk, normalise_speech
from .zh import content_words, proper_nouns

EVIDENCE_VERSION = "evidence-6"
PRESENTED_BONUS = 0.3
ASIDE_PENALTY = 0.6
CLAIM_PENALTY = 0.4
TITLE_BONUS = 0.6
REPEAT_BONUS = 0.25  # per further clause mentioning it, up to two
ADDRESSED_PENALTY = 1.0  # times the detector's probability for the candidate's clause
VISUAL_WEIGHT = 2.0  # times the similarity to the frames minus the best candidate's
VISUAL_CONTRADICTS = 0.05  # a once-said candidate this far below the best visual match is contradicted by the frames
FIRST_BONUS = 0.3  # a pitch introduces its product before comparisons, asides and other products
READ_BONUS = 0.8  # its brand-like word is printed in the frames: the strongest evidence a speaker cannot change
CONTEXT_WORDS = 10
RIVAL_PRODUCTLIKE = 0.15
RIVAL_PRODUCTLIKE_ZH = 0.0  # multilingual-e5's similarities are compressed: Chinese goods score > 0, chatter < 0
CJK_ENCODER = "e5-small"  # English-only encoders embed Chinese as noise; product-likeness of Chinese needs this one
ZH_NAME_PROTOTYPES = ["洗发水", "面霜", "口红", "香水", "咖啡", "茶叶", "果汁", "牛奶", "零食", "坚果", "巧克力", "手机",
                      "电脑", "耳机", "运动鞋", "衣服", "电器", "洗衣液", "狗粮", "玩具"]
ZH_CHATTER_WORDS = ["天气", "下雨", "我家猫", "午饭", "电影", "朋友", "关注", "点赞", "链接", "价格", "评论", "明天",
                    "晚上", "购物车", "答案"]
RIVAL_ADDRESSED = 0.2  # a mention in a clause this likely to speak to a machine is a rival even under the threshold
MAX_CHOICES = 4
MAX_NAME_WORDS = 5  # a product name is a short noun phrase (brand + up to four words)
CHOICE_MARGIN = 0.35

_CLAIMED = re.compile(r"(?:\b(?:listed|filed|tagged|indexed|classified|catalogued|recorded|labelled|labeled|marked|"
                      r"named|called|as|under)\s+(?:a |an |the )?$)")


@dataclass
class Candidate:
    name: str
    brand: str
    clause: int  # index of the clause it was said in (-1: the title)
    words: set[str]
    presented: bool = False
    aside: bool = False
    claimed: bool = False
    first: bool = False  # the first product the host brings up
    mentions: int = 1
    title_support: bool = False
    visual: float | None = None
    read_support: bool = False  # a brand-like word of it is printed in the frames
    addressed: float = 0.0
    productlike: float = 0.0
    score: float = 0.0
    eligible: bool = True
    cut: set[str] = field(default_factory=set)  # names trimmed off its run to make it a short noun phrase
    why: list[str] = field(default_factory=list)


@dataclass
class Identity:
    winner: Candidate | None
    candidates: list[Candidate]
    choices: list[Candidate]  # eligible candidates an LLM may choose among, best first
    blocked: set[str]  # words of ineligible candidates and rivals

    @property
    def product_name(self) -> str:
        return self.winner.name if self.winner else ""

    @property
    def brand(self) -> str:
        return self.winner.brand if self.winner else ""


def _words(run: str) -> set[str]:
    from .extractive import FUNCTION_WORDS

    if has_cjk(run):
        return content_words(run) or {run}
    return {w for w in run.split() if w not in FUNCTION_WORDS and len(w) >= 3 and not w.isdigit()}


def _said_in(word: str, clause: str) -> bool:
    if _HAS_CJK.search(word):
        return word in clause.replace(" ", "")
    return re.search(rf"\b{re.escape(word)}\b", clause) is not None


def context_of(candidate: Candidate, clause: str) -> str:
    """The candidate with the words said just before it in its clause."""
    at = clause.find(candidate.name)
    if at < 0 or has_cjk(candidate.name):
        return clause
    before = clause[:at].split()[-CONTEXT_WORDS:]
    return " ".join(before + [candidate.name])


def extract_candidates(clauses: list[str], title: str = "") -> list[Candidate]:
    from .extractive import ZH_FUNCTION, ZH_INTRODUCED, mention_runs

    out: list[Candidate] = []
    sources = ([(-1, title)] if title else []) + list(enumerate(clauses))
    for index, text in sources:
        norm = normalise_speech(text)
        if has_cjk(text):
            compact = re.sub(r"\s+", "", text)
            introduced = {ZH_FUNCTION.split(m.group(1))[0] for m in ZH_INTRODUCED.finditer(compact)}
            for run, _, _ in mention_runs(text):
                out.append(Candidate(run, "", index, _words(run), presented=any(run.startswith(i) or i.startswith(run)
                                                                          for i in introduced if i)))
            continue
        for run, brand, cue in mention_runs(text):
            before = " ".join((norm[:norm.find(run)] if run in norm else "").split()[-4:]) + " "
            out.append(Candidate(run, brand or "", index, _words(run) | _words(brand), presented=cue > 0,
                                 aside=cue < 0, claimed=bool(_CLAIMED.search(before)) or
                                 bool(_IDENTITY_CLAIM.search(before))))
    return [c for c in out if c.words]


def shown_in(candidate: Candidate, read: str, vocab: set[str]) -> bool:
    """Whether a brand-like word of the candidate (its brand, or a word of four letters or more the text encoder's
    vocabulary does not know: made-up names are brands) is printed in the frames' text `read`, allowing for a
    letter or two misread. Generic words ("original", "juice") corroborate nothing."""
    from ..encoders.ngrams import WORD, fold

    if has_cjk(candidate.name):
        compact = re.sub(r"\s+", "", read)
        return any(len(w) >= 2 and w in compact for w in candidate.words)
    printed = [_unconfused(w) for w in WORD.findall(fold(read)) if len(w) >= 3]
    wanted = {_unconfused(fold(w)) for w in candidate.words
              if len(w) >= 4 and (w == candidate.brand or (vocab and w not in vocab))}
    return any(_misread(w, p) for w in wanted for p in printed)


_CONFUSED = str.maketrans({"l": "i", "1": "i", "|": "i", "0": "o", "5": "s", "8": "b"})


def _unconfused(word: str) -> str:
    """The letters OCR confuses most (l/1/I, 0/O, 5/S, 8/B) made one."""
    return word.translate(_CONFUSED)


def _misread(wanted: str, printed: str) -> bool:
    """Whether `printed` is `wanted` read with at most one letter wrong (two from eight letters on)."""
    allowed = 0 if len(wanted) < 5 else 1 if len(wanted) < 8 else 2
    if abs(len(wanted) - len(printed)) > allowed:
        return False
    previous = list(range(len(printed) + 1))
    for i, a in enumerate(wanted, 1):
        row = [i]
        for j, b in enumerate(printed, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = row
    return previous[-1] <= allowed


def _productlike_scores(vecs: np.ndarray, goods: np.ndarray, chatter: np.ndarray) -> np.ndarray:
    """How much closer each vector is to the nearest kind of goods than to the nearest stream chatter."""
    return (vecs @ goods.T).max(axis=1) - (vecs @ chatter.T).max(axis=1)


def _productlike(c: Candidate) -> bool:
    return c.productlike >= (RIVAL_PRODUCTLIKE_ZH if has_cjk(c.name) else RIVAL_PRODUCTLIKE)


class EvidenceScorer:
    """Scores candidates with a text encoder (product-likeness, title and frame agreement)."""

    def __init__(self, encoder, cjk_encoder: str = CJK_ENCODER):
        self.encoder = encoder
        self.cjk_encoder_spec = cjk_encoder
        self._protos = None
        self._cjk = None
        self._vocab = None

    def _prototypes(self):
        if self._protos is None:
            from .extractive import CHATTER_WORDS, NAME_PROTOTYPES

            self._protos = (self.encoder.encode(NAME_PROTOTYPES), self.encoder.encode(CHATTER_WORDS))
        return self._protos

    def cjk_productlike(self, names: list[str]) -> np.ndarray:
        """Product-likeness of Chinese candidates, by the multilingual encoder against Chinese and English
        prototypes of goods and of stream chatter."""
        if self._cjk is None:
            from ..encoders import load_text_encoder
            from .extractive import CHATTER_WORDS, NAME_PROTOTYPES

            encoder = load_text_encoder(self.cjk_encoder_spec)  # the process's one instance (the summariser's, too)
            self._cjk = (encoder, encoder.encode(NAME_PROTOTYPES + ZH_NAME_PROTOTYPES),
                         encoder.encode(CHATTER_WORDS + ZH_CHATTER_WORDS))
        encoder, goods, chatter = self._cjk
        return _productlike_scores(encoder.encode(names), goods, chatter)

    def vocabulary(self) -> set[str]:
        """Whole words the text encoder's tokenizer knows; empty if it does not expose one."""
        if self._vocab is None:
            tokenizer = getattr(getattr(self.encoder, "model", None), "tokenizer", None)
            try:
                self._vocab = {w for w in tokenizer.get_vocab() if w.isalpha()} if tokenizer is not None else set()
            except (AttributeError, TypeError):
                self._vocab = set()
        return self._vocab

    def brand_of(self, run: str) -> str:
        words = run.split()
        if len(words) < 2 or has_cjk(run):
            return ""
        vocab = self.vocabulary()
        unknown = [w for w in words if vocab and w not in vocab and not w.isdigit()]
        return unknown[0] if unknown else words[0]

    def identify(self, clauses: list[str], title: str = "", addressed: list[float] | None = None,
                 visual: np.ndarray | None = None, detector=None, read: str | None = None) -> Identity:
        """`addressed`: the detector's probability per clause; with `detector`, each candidate's own context (the
        words before it in its clause, up to `CONTEXT_WORDS`, and the run) is scored too, since ASR clauses run on
        and an address to a machine may share a clause with the real pitch. `read`: the text OCR read in the
        clip's frames."""
        norm_clauses = [normalise_speech(c) for c in clauses]
        candidates = extract_candidates(clauses, title)
        if not candidates:
            return Identity(None, [], [], set())
        addressed = addressed or [0.0] * len(clauses)
        title_norm = normalise_speech(title)
        names, chatter = self._prototypes()
        vecs = self.encoder.encode([c.name for c in candidates])
        vocab = self.vocabulary()
        productlike = _productlike_scores(vecs, names, chatter)
        chinese = [i for i, c in enumerate(candidates) if has_cjk(c.name)]
        if chinese:
            productlike[chinese] = self.cjk_productlike([candidates[i].name for i in chinese])
        visual_sim = None
        if visual is not None:
            v = np.asarray(visual, np.float32)
            visual_sim = vecs @ (v / max(float(np.linalg.norm(v)), 1e-9))
        title_names = any(c.clause == -1 for c in candidates)
        for i, c in enumerate(candidates):
            c.productlike = float(productlike[i])
            c.mentions = sum(any(_said_in(w, nc) for w in c.words) for nc in norm_clauses)
            c.title_support = c.clause == -1 or any(_said_in(w, title_norm) for w in c.words)
            c.addressed = float(addressed[c.clause]) if c.clause >= 0 else 0.0
            c.read_support = bool(read) and shown_in(c, read, vocab)
        read_shows = any(c.read_support for c in candidates)
        # trusted evidence of the product, which the speaker cannot change by talking: a title naming a product (a
        # run of two words or more, or a product-like one: "what i bought this week" names none), or the frames' text
        # corroborating one of the candidates
        trusted = read_shows or any(c.clause == -1 and (len(c.name.split()) >= 2 or _productlike(c))
                                    for c in candidates)
        supported = self._supported_words(candidates, title_norm, read, vocab, norm_clauses)
        for c in candidates:
            if c.clause >= 0:
                self._shape_name(c, supported, trusted, vocab)
        if detector is not None:
            spoken = [c for c in candidates if c.clause >= 0]
            local = detector.probabilities([context_of(c, norm_clauses[c.clause]) for c in spoken])
            for c, p in zip(spoken, local):
                c.addressed = max(c.addressed, float(p))
        first = next((c for c in candidates if c.clause >= 0 and not c.aside and (
            c.presented or _productlike(c))), None)
        for c in candidates:
            c.first = c is first
            length = min(len(c.name) / 2 if has_cjk(c.name) else len(c.name.split()), 4)
            brand_like = bool(vocab) and not has_cjk(c.name) and any(
                w not in vocab for w in c.name.split() if w.isalpha())
            c.score = c.productlike + 0.1 * length + 0.2 * brand_like \
                + PRESENTED_BONUS * c.presented - ASIDE_PENALTY * c.aside - CLAIM_PENALTY * c.claimed \
                + TITLE_BONUS * c.title_support + REPEAT_BONUS * min(max(c.mentions - 1, 0), 2) \
                + FIRST_BONUS * c.first + READ_BONUS * c.read_support \
                - ADDRESSED_PENALTY * c.addressed
        if visual_sim is not None:
            best = float(visual_sim.max())
            for i, c in enumerate(candidates):
                c.visual = float(visual_sim[i]) - best
                c.score += VISUAL_WEIGHT * c.visual
        for c in candidates:
            once = c.mentions <= 1 and not c.title_support and not c.read_support
            if trusted and c.clause >= 0 and not c.title_support and not c.read_support:
                c.why.append("the title and the frames' text name another product")
            if once and title_names:
                c.why.append("said once, the title names another product")
            if once and c.visual is not None and c.visual < -VISUAL_CONTRADICTS:
                c.why.append("said once, the frames show another product")
            c.eligible = not c.why
        eligible = sorted((c for c in candidates if c.eligible), key=lambda c: -c.score)
        winner = eligible[0] if eligible else None
        if winner is not None:
            winner.brand = self._supported_brand(winner, candidates, supported, trusted)
        choices = [c for c in eligible if c.score >= eligible[0].score - CHOICE_MARGIN][:MAX_CHOICES] \
            if eligible else []
        keep_words = (winner.words if winner else set()) | {w for c in candidates if c.title_support
                                                           for w in c.words}
        blocked: set[str] = set()
        for c in candidates:
            blocked |= c.cut - keep_words
            if c is winner:
                continue
            if c.words & keep_words:  # the product's type said with another brand ("chanel lipstick"): that brand
                other = c.brand or self.brand_of(c.name)
                if other and not has_cjk(other) and other not in keep_words and other not in supported:
                    blocked.add(other)
                continue
            named = c.presented or c.claimed or c.addressed >= RIVAL_ADDRESSED or (
                _productlike(c) and (has_cjk(c.name) or len(c.name.split()) >= 2)) or (
                has_cjk(c.name) and bool(proper_nouns(c.name) - keep_words))
            rival = c.aside or named or (not c.eligible and _productlike(c))
            if rival:
                blocked |= c.words - keep_words
        return Identity(winner, candidates, choices, blocked)

    @staticmethod
    def _supported_words(candidates: list[Candidate], title_norm: str, read: str | None, vocab: set[str],
                         clauses: list[str]) -> set[str]:
        """Words of candidates that something besides their own clause supports: the title, the frames' text
        (letter-for-letter up to OCR's misreads) or another clause saying them."""
        from ..encoders.ngrams import WORD, fold

        printed = [_unconfused(w) for w in WORD.findall(fold(read or "")) if len(w) >= 3]
        out = set()
        for c in candidates:
            for w in c.name.split() + ([c.brand] if c.brand else []):
                if has_cjk(w) or len(w) < 3:
                    continue
                if c.clause == -1 or _said_in(w, title_norm) or any(
                        _misread(_unconfused(w), p) for p in printed) or sum(_said_in(w, k) for k in clauses) > 1:
                    out.add(w)
        return out

    @staticmethod
    def _shape_name(c: Candidate, supported: set[str], trusted: bool, vocab: set[str]) -> None:
        """A product name is a short noun phrase: a run of more than `MAX_NAME_WORDS` words, or with trusted
        evidence any run, is cut to its best supported window ("nike adidas puma lumoka shorts" under the title
        "Lumoka Sport Shorts" → "lumoka shorts"; the words trimmed off that the text encoder does not know, names,
        are `cut`: blocked from every field); a run nothing supports keeps its first words (brand and type first)."""
        words = c.name.split()
        if has_cjk(c.name) or len(words) <= 1:
            return
        if not set(words) & supported:  # nothing to anchor it: the brand and type come first
            c.name = " ".join(words[:MAX_NAME_WORDS])
            c.words = _words(c.name) | _words(c.brand)
            return
        if len(words) <= MAX_NAME_WORDS and not trusted:
            return
        best, best_score = (0, MAX_NAME_WORDS), None
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + MAX_NAME_WORDS) + 1):
                span = words[start:end]
                score = (sum(w in supported for w in span) - sum(w not in supported for w in span) * 0.5, -start)
                if best_score is None or score > best_score:
                    best, best_score = (start, end), score
        kept = words[best[0]:best[1]]
        c.cut = {w for w in words if w not in kept and w.isalpha() and vocab and w not in vocab} - supported
        c.name = " ".join(kept)
        c.words = _words(c.name) | _words(c.brand)

    def _supported_brand(self, winner: Candidate, candidates: list[Candidate], supported: set[str],
                         trusted: bool) -> str:
        """The winner's brand, from what was said ("from lumoka") or its name; with trusted evidence it must be a
        supported word — the title, the frames' text, or said again in another clause — else the title's brand
        when the winner shares its product, else a supported word of its name."""
        brand = winner.brand or self.brand_of(winner.name)
        if not trusted or has_cjk(winner.name) or all(w in supported for w in brand.split()):
            return brand
        for c in candidates:
            if c.clause == -1 and c.words & winner.words:
                return self.brand_of(c.name)
        inside = [w for w in winner.name.split() if w in supported]
        return inside[0] if inside else ""
