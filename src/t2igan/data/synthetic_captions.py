"""The caption grammar of the synthetic-flowers dataset, in the vocabulary of Reed et al.'s Oxford-102 captions.

Ten captions per image: templates with synonyms, varied word order and partial descriptions (a caption may name only
some attributes). Colour words have common variants ("bright yellow", "pinkish purple"). Style factors (background,
position, rotation, scale, lighting) are never mentioned.
"""

from __future__ import annotations

import re

import numpy as np

# Attribute value → phrases used for it. Keys match `ATTRIBUTES` in `synthetic.py`.
PETAL_COLOUR_WORDS: dict[str, list[str]] = {
    "red": ["red", "bright red", "deep red", "scarlet"],
    "orange": ["orange", "bright orange", "tangerine", "deep orange"],
    "yellow": ["yellow", "bright yellow", "golden yellow", "lemon yellow"],
    "white": ["white", "pure white", "creamy white", "snow white"],
    "pink": ["pink", "light pink", "pale pink", "rose pink"],
    "purple": ["purple", "violet", "deep purple", "dark purple"],
    "blue": ["blue", "bright blue", "deep blue", "cobalt blue"],
    "magenta": ["magenta", "fuchsia", "pinkish purple", "bright magenta"],
}
CENTRE_COLOUR_WORDS: dict[str, list[str]] = {
    "yellow": ["yellow", "bright yellow", "golden"],
    "orange": ["orange", "dark orange", "orangey"],
    "brown": ["brown", "dark brown", "chocolate brown"],
    "black": ["black", "blackish", "very dark"],
    "white": ["white", "pale", "whitish"],
    "green": ["green", "light green", "lime green"],
}
SHAPE_WORDS: dict[str, list[str]] = {
    "round": ["round", "rounded", "broad round", "oval"],
    "pointed": ["pointed", "pointy", "sharp-tipped", "pointed-tip"],
    "thin": ["thin", "long thin", "narrow", "skinny"],
}
COUNT_WORDS: dict[str, list[str]] = {
    "3": ["three"],
    "5": ["five"],
    "8": ["eight"],
    "12": ["twelve", "many", "numerous"],
}
# (noun, verb) for the centre of the flower.
CENTRE_NOUNS: list[tuple[str, str]] = [
    ("center", "is"),
    ("centre", "is"),
    ("stamen", "is"),
    ("pistil", "is"),
    ("anthers", "are"),
    ("stigma", "is"),
    ("middle", "is"),
]

# {p} petal colour, {c} centre colour, {s} shape, {n} count, {cn} centre noun, {cv} its verb.
TEMPLATES: list[str] = [
    "this flower has {p} petals and a {c} {cn}.",
    "a flower with {s} {p} petals and {c} {cn}.",
    "the petals are {p} and {s}, and the {cn} {cv} {c}.",
    "this flower is {p} in color, with petals that are {s}.",
    "a {p} flower with {n} {s} petals.",
    "this flower has {n} {p} petals surrounding a {c} {cn}.",
    "the flower has {s} petals that are {p} with {c} {cn}.",
    "{p} petals with a {c} {cn} in the middle.",
    "this {p} flower has {n} petals.",
    "the {cn} {cv} {c} and the petals are {p}.",
    "there are {n} {p} petals on this flower.",
    "a flower with {c} {cn} and {s} petals.",
    "this flower has petals that are {p} and {s}.",
    "the petals of this flower are {p} with a {c} {cn}.",
    "a flower with {n} petals that are {s} and {p}.",
    "this flower has {p} {s} petals and a {c} {cn}.",
    "{n} {s} petals in {p} surround the {c} {cn}.",
    "this flower has a {c} {cn} surrounded by {p} petals.",
    "the flower is {p} with {s} petals.",
    "a {p} flower with a large {c} {cn}.",
]


def make_captions(rng: np.random.Generator, petal: str, centre: str, shape: str, count: str, k: int = 10) -> list[str]:
    """``k`` captions for one flower, drawn from distinct templates (a caption may omit attributes)."""
    picks = rng.choice(len(TEMPLATES), size=k, replace=k > len(TEMPLATES))
    out = []
    for t in picks:
        cn, cv = CENTRE_NOUNS[int(rng.integers(len(CENTRE_NOUNS)))]
        words = {
            "p": _pick(rng, PETAL_COLOUR_WORDS[petal]),
            "c": _pick(rng, CENTRE_COLOUR_WORDS[centre]),
            "s": _pick(rng, SHAPE_WORDS[shape]),
            "n": _pick(rng, COUNT_WORDS[count]),
            "cn": cn,
            "cv": cv,
        }
        template = TEMPLATES[int(t)]
        if cv == "are":  # plural centre noun: no article
            template = template.replace("a {c} {cn}", "{c} {cn}").replace("a large {c}", "large {c}")
        text = _ARTICLE.sub(r"\1n \2", template.format(**words))
        out.append(text[0].upper() + text[1:] if rng.random() < 0.15 else text)
    return out


_ARTICLE = re.compile(r"\b([aA]) ([aeiou])")


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    # The plain word is the most common variant, as in real captions.
    if len(options) == 1 or rng.random() < 0.5:
        return options[0]
    return options[1 + int(rng.integers(len(options) - 1))]


# --- parsing: which attribute values does a caption name? --------------------------------------------------------
_SLOTS = {
    "p": ("petal_colour", PETAL_COLOUR_WORDS),
    "c": ("centre_colour", CENTRE_COLOUR_WORDS),
    "s": ("petal_shape", SHAPE_WORDS),
    "n": ("petal_count", COUNT_WORDS),
}
_PHRASE_TO_VALUE = {slot: {w: v for v, ws in words.items() for w in ws} for slot, (_, words) in _SLOTS.items()}
_CENTRE_NOUN_RE = "|".join(sorted({re.escape(n) for n, _ in CENTRE_NOUNS}, key=len, reverse=True))


def _alternation(slot: str) -> str:
    return "|".join(re.escape(w) for w in sorted(_PHRASE_TO_VALUE[slot], key=len, reverse=True))


def _template_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        key = m.group(1)
        if key in _SLOTS:
            out.append(f"(?P<{key}>{_alternation(key)})")
        elif key == "cn":
            out.append(f"(?:{_CENTRE_NOUN_RE})")
        else:  # cv
            out.append("(?:is|are)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    pattern = "".join(out).replace(r"a\ (?P<c>", r"(?:an?\ )?(?P<c>").replace(r"a\ large", r"(?:an?\ )?large")
    pattern = pattern.replace(r"a\ (?P<p>", r"an?\ (?P<p>")
    return re.compile(pattern)


_TEMPLATE_RES = [_template_regex(t) for t in TEMPLATES]


def caption_attributes(caption: str) -> dict[str, str]:
    """Attribute values a caption names, e.g. ``{"petal_colour": "pink", "petal_count": "5"}`` (only those named).

    Captions of the grammar are parsed exactly (template match); other text (user prompts) falls back to a clause
    heuristic: a colour in a clause that mentions the centre/stamen/pistil/anthers/stigma is the centre colour,
    otherwise the petal colour.
    """
    text = " ".join(caption.lower().split())
    for rx in _TEMPLATE_RES:
        m = rx.fullmatch(text)
        if m:
            return {_SLOTS[k][0]: _PHRASE_TO_VALUE[k][v] for k, v in m.groupdict().items() if v is not None}
    return _heuristic(text)


def _heuristic(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for clause in re.split(r",|;|\band\b|\bwith\b|\bsurround\w*\b", text):
        centre = re.search(rf"\b(?:{_CENTRE_NOUN_RE})\b", clause) is not None
        for slot in ("s", "n", "c" if centre else "p"):
            m = re.search(rf"\b(?:{_alternation(slot)})\b", clause)
            if m and _SLOTS[slot][0] not in out:
                out[_SLOTS[slot][0]] = _PHRASE_TO_VALUE[slot][m.group(0)]
    return out
