"""Filters on what an index holds: domains, categories and any attribute of a product (brand, price, ... — the extra
columns of products.csv), as Elasticsearch users write them:

    {"brand": "Arla"}                      equality (strings compared case-insensitively)
    {"brand": ["Arla", "Garant"]}          any of these
    {"price": {"gte": 10, "lt": 20}}       a range (gt, gte, lt, lte); numbers compared as numbers

A filter is checked against the index's items before searching and becomes the id allow-list FAISS searches with
(an IDSelector), and a Milvus filter expression on the rows' `attributes` JSON field (`milvus_expression`), so the
vector search itself returns only matching items.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import ProdlensError

RANGE_OPS = ("gt", "gte", "lt", "lte")


class FilterError(ProdlensError):
    """A filter that cannot be applied: an unknown attribute, a malformed range."""


@dataclass(frozen=True)
class Condition:
    attribute: str
    values: tuple = ()  # equality: any of these (lower-cased strings)
    bounds: tuple = ()  # range: ((op, number), ...)

    def matches(self, attributes: dict) -> bool:
        value = attributes.get(self.attribute)
        if value is None or value == "":
            return False
        if self.values:
            return _folded(value) in self.values
        number = _number(value)
        if number is None:
            return False
        return all(_compare(number, op, bound) for op, bound in self.bounds)


def parse_filters(filters: dict | None, known: set[str]) -> tuple[Condition, ...]:
    """Conditions from a JSON filter object; `known`: the attributes the index has (others are an error naming
    them, not a filter that silently matches nothing)."""
    if not filters:
        return ()
    if not isinstance(filters, dict):
        raise FilterError(f"filter must be an object of attribute → value, got {type(filters).__name__}")
    unknown = sorted(set(filters) - known)
    if unknown:
        shown = ", ".join(sorted(known)) or "none: this index's products have no attributes"
        raise FilterError(f"unknown filter attribute {unknown[0]!r}; the index's attributes: {shown}")
    out = []
    for name in sorted(filters):
        spec = filters[name]
        if isinstance(spec, dict):
            bad = sorted(set(spec) - set(RANGE_OPS))
            if bad or not spec:
                raise FilterError(f"filter {name!r}: a range takes {', '.join(RANGE_OPS)}, got "
                                  f"{', '.join(bad) or 'nothing'}")
            bounds = []
            for op in sorted(spec):
                number = _number(spec[op])
                if number is None or isinstance(spec[op], bool):
                    raise FilterError(f"filter {name!r}: {op} needs a number, got {spec[op]!r}")
                bounds.append((op, number))
            out.append(Condition(name, bounds=tuple(bounds)))
        else:
            values = spec if isinstance(spec, list) else [spec]
            if not values or any(isinstance(v, (dict, list)) or v is None for v in values):
                raise FilterError(f"filter {name!r}: give a value, a list of values or a range object")
            out.append(Condition(name, values=tuple(sorted({_folded(v) for v in values}))))
    return tuple(out)


def matches(conditions: tuple[Condition, ...], attributes: dict) -> bool:
    return all(c.matches(attributes) for c in conditions)


def searchable(attributes: dict) -> dict:
    """Attributes as a Milvus row holds them: folded strings under "s" (equality), numbers under "n" (ranges)."""
    numbers = {k: _number(v) for k, v in attributes.items()}
    return {"s": {k: _folded(v) for k, v in attributes.items()},
            "n": {k: n for k, n in numbers.items() if n is not None and n == n}}


def milvus_expression(conditions: tuple[Condition, ...], field: str = "attributes") -> str:
    """The conditions as one Milvus boolean expression over `searchable` rows."""
    parts = []
    for c in conditions:
        key = json.dumps(c.attribute, ensure_ascii=False)
        if c.values:
            # an OR of equalities: Milvus takes `in` after a field, not after a path into a JSON field
            parts.append("(" + " or ".join(f'{field}["s"][{key}] == {json.dumps(v, ensure_ascii=False)}'
                                           for v in c.values) + ")")
        for op, bound in c.bounds:
            parts.append(f'{field}["n"][{key}] {_OPERATORS[op]} {bound!r}')
    return " and ".join(parts)


_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def encode_attributes(attributes: dict) -> str:
    return json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else ""


def decode_attributes(text: str | None) -> dict:
    return json.loads(text) if text else {}


def _folded(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return _number_text(float(value))
    number = _number(value)
    return _number_text(number) if number is not None else str(value).strip().casefold()


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _compare(number: float, op: str, bound: float) -> bool:
    return {"gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound}[op]
