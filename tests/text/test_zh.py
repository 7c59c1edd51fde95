"""Chinese speech without punctuation: product names as words, clause windows, and another product's name kept out
of every field."""
from prodlens.text import Summarizer
from prodlens.text.zh import name_span, proper_nouns, windows

# A pitch for one product with a claim that it is another, as unpunctuated ASR gives it (a phrasing that is in no
# rule or corpus family)
PITCH = "家人们大家好今天给大家推荐三只松鼠每日坚果一包一包的很方便大家别搞错了是美的的微波炉今天好冷啊链接在购物车"


def test_a_name_is_cut_from_the_talk_around_it():
    assert name_span("三只松鼠每日坚果其实") == "三只松鼠每日坚果"
    assert name_span("其实叫雀巢咖啡下单就送") == "雀巢咖啡下单"
    assert name_span("香奈儿香水一包一包") == "香奈儿香水"
    assert name_span("方便") == "方便"  # no noun: left as it is
    assert "香奈儿" in proper_nouns("香奈儿香水") and not proper_nouns("每日坚果")


def test_speech_is_cut_where_it_turns_but_not_inside_a_name():
    parts = windows(PITCH)
    assert "".join(parts) == PITCH
    assert any("三只松鼠每日坚果" in p for p in parts)  # 每日 is a pronoun to the tagger, not a turn
    assert any(p.startswith("大家别搞错了") for p in parts)
    assert len(parts) >= 4


def test_the_claimed_product_reaches_no_field():
    facts = Summarizer("extractive").summarize(PITCH).facts
    assert facts.product_name == "三只松鼠每日坚果"
    dumped = facts.model_dump_json()
    assert "微波炉" not in dumped and "美的的" not in dumped
    assert "坚果" in facts.summary


def test_a_rival_brand_the_tagger_knows_is_blocked_even_when_unflagged():
    pitch = "宝宝们晚上好这款完美日记口红颜色特别正正确答案是华为手机不拔干很滋润我家猫又在捣乱喜欢的点关注"
    facts = Summarizer("extractive").summarize(pitch).facts
    assert "口红" in facts.product_name
    assert "华为" not in facts.model_dump_json()
