"""Which attributes does a caption name? Parses captions against the dataset's attribute vocabulary.

Prefers the data layer's own parser (``t2igan.data.synthetic.caption_attributes``, which knows the caption grammar)
when it exists. Otherwise a vocabulary matcher: every value phrase of every attribute found as whole words; when the
same phrase belongs to several attributes (a colour for petals and for the centre), the attribute whose name words
(``petal_color`` → "petal") occur closest to the phrase wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

Parser = Callable[[str], dict[str, str]]


def _words(s: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", s.lower().replace("_", " ").replace("-", " "))


def _stem(w: str) -> str:
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


class VocabularyParser:
    """``parser(caption) -> {attribute name: value}`` for the attributes the caption names."""

    def __init__(self, attribute_names: Sequence[str], attribute_values: Sequence[Sequence[str]]) -> None:
        self.names = list(attribute_names)
        self.values = [list(v) for v in attribute_values]
        self.keywords = [
            {_stem(w) for w in _words(n)} - {"color", "colour", "number", "of", "shape", "type"} for n in self.names
        ]
        # phrase (tuple of words) → list of (attribute index, value); longest phrases first
        phrases: dict[tuple[str, ...], list[tuple[int, str]]] = {}
        for a, vals in enumerate(self.values):
            for v in vals:
                key = tuple(_words(str(v)))
                if key:
                    phrases.setdefault(key, []).append((a, str(v)))
        self.phrases = sorted(phrases.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, caption: str) -> dict[str, str]:
        words = _words(caption)
        stems = [_stem(w) for w in words]
        used = [False] * len(words)
        found: dict[str, str] = {}
        for phrase, owners in self.phrases:
            n = len(phrase)
            for s in range(len(words) - n + 1):
                if any(used[s : s + n]) or tuple(words[s : s + n]) != phrase:
                    continue
                a, v = owners[0] if len(owners) == 1 else self._disambiguate(owners, stems, s, n, found)
                if self.names[a] not in found:
                    found[self.names[a]] = v
                    used[s : s + n] = [True] * n
        return found

    def _disambiguate(
        self, owners: list[tuple[int, str]], stems: list[str], s: int, n: int, found: dict[str, str]
    ) -> tuple[int, str]:
        def distance(a: int) -> float:
            pos = [i for i, w in enumerate(stems) if w in self.keywords[a]]
            if not pos:
                return float("inf")
            # a modifier usually precedes its noun ("red petals"): prefer keywords after the phrase
            return min((i - (s + n - 1)) if i >= s + n else (s - i) + 0.5 for i in pos)

        free = [o for o in owners if self.names[o[0]] not in found] or owners
        return min(free, key=lambda o: distance(o[0]))


def caption_parser(attribute_names: Sequence[str], attribute_values: Sequence[Sequence[str]]) -> Parser:
    """The data layer's exact grammar parser (``t2igan.data.synthetic.caption_attributes``) when the vocabulary is
    exactly the synthetic flowers', else :class:`VocabularyParser`."""
    try:
        from t2igan.data.synthetic import ATTRIBUTES, caption_attributes

        if [list(map(str, v)) for v in attribute_values] == [ATTRIBUTES.get(n) for n in attribute_names]:
            return caption_attributes
    except ImportError:
        pass
    return VocabularyParser(attribute_names, attribute_values)


def named_attribute_targets(
    captions: Sequence[str],
    attribute_names: Sequence[str],
    attribute_values: Sequence[Sequence[str]],
    parser: Parser | None = None,
) -> np.ndarray:
    """``[N, A]`` int64: the value index each caption names for each attribute, −1 where it names none."""
    parser = parser or caption_parser(attribute_names, attribute_values)
    index = {
        name: {str(v): j for j, v in enumerate(vals)}
        for name, vals in zip(attribute_names, attribute_values, strict=True)
    }
    out = np.full((len(captions), len(attribute_names)), -1, dtype=np.int64)
    col = {n: i for i, n in enumerate(attribute_names)}
    for r, cap in enumerate(captions):
        for name, value in parser(cap).items():
            if name in col and str(value) in index[name]:
                out[r, col[name]] = index[name][str(value)]
    return out
