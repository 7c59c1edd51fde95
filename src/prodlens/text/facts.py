"""The structured product facts a summariser produces, validated with pydantic."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_FIELD_CHARS = 120
MAX_ATTRIBUTES = 12


class ProductFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_name: str = Field("", max_length=MAX_FIELD_CHARS)
    brand: str = Field("", max_length=MAX_FIELD_CHARS)
    category: str = Field("", max_length=MAX_FIELD_CHARS)
    attributes: list[str] = Field(default_factory=list, max_length=MAX_ATTRIBUTES)
    summary: str = Field("", max_length=600)

    @field_validator("product_name", "brand", "category", "summary", mode="before")
    @classmethod
    def _clean(cls, v):
        if v is None:
            return ""
        if not isinstance(v, str):
            raise ValueError("must be text")
        return " ".join(v.split())

    @field_validator("summary", mode="before")
    @classmethod
    def _collapse_repeats(cls, v):
        """A small model caught in a loop ("one liter, one liter, one liter, ...") says each phrase once."""
        if not isinstance(v, str):
            return v
        seen, out = set(), []
        for phrase in v.split(", "):
            key = phrase.strip(" .").lower()
            if key and key not in seen:
                seen.add(key)
                out.append(phrase)
        return ", ".join(out)

    @field_validator("attributes", mode="before")
    @classmethod
    def _clean_list(cls, v):
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError("must be a list of text")
        out = []
        for x in v:
            x = " ".join(x.split())[:60]
            if x and x.lower() not in {o.lower() for o in out}:
                out.append(x)
        return out

    def is_empty(self) -> bool:
        return not (self.product_name or self.brand or self.category or self.attributes or self.summary)

    def as_text(self) -> str:
        """The text the embedding's text branch reads."""
        parts = [self.product_name, self.brand, self.category, ", ".join(self.attributes), self.summary]
        return ". ".join(p for p in parts if p)
