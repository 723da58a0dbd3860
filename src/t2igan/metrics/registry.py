"""The metric registry: protocol name → function, as StyleGAN2-ADA's ``calc_metrics`` does it.

A metric is a function ``fn(ctx: EvalContext) -> dict`` in its own file, registered under the name of its protocol
(``fid_evaluator``, ``rprec_sje``, …). The name says what is measured and with which feature network; the sample
count and resize protocol are added to the reported ``protocol`` string
(e.g. ``fid_evaluator_2k_test-eval_64px-bicubic``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from t2igan.utils.errors import T2IError

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext

MetricFn = Callable[["EvalContext"], dict[str, Any]]

# Module that registers each metric (imported lazily, so one metric's optional dependency never breaks another).
_MODULES = (
    "t2igan.metrics.attribute_accuracy",
    "t2igan.metrics.inception_score",
    "t2igan.metrics.fid",
    "t2igan.metrics.kid",
    "t2igan.metrics.r_precision",
    "t2igan.metrics.nearest_neighbours",
    "t2igan.metrics.diversity",
    "t2igan.metrics.style_spread",
)

# Short names users type → protocol names.
ALIASES: dict[str, str] = {
    "attr": "attr_acc",
    "is": "is_evaluator",
    "fid": "fid_evaluator",
    "kid": "kid_evaluator",
    "rprec": "rprec_sje",
    "r_precision": "rprec_sje",
    "nn": "nn_evaluator",
    "diversity": "diversity_evaluator",
    "style": "style_spread",
}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: MetricFn
    description: str
    needs: frozenset[str] = field(default_factory=frozenset)  # "evaluator", "sje", "inception"
    default: bool = True  # part of ``--metrics all``


REGISTRY: dict[str, MetricSpec] = {}


def register(name: str, description: str, needs: tuple[str, ...] = ("evaluator",), default: bool = True):
    """Decorator: register ``fn`` as metric ``name``."""

    def deco(fn: MetricFn) -> MetricFn:
        REGISTRY[name] = MetricSpec(name, fn, description, frozenset(needs), default)
        return fn

    return deco


def load_all() -> dict[str, MetricSpec]:
    for module in _MODULES:
        importlib.import_module(module)
    return REGISTRY


def resolve(spec: str, available: set[str] | None = None) -> list[str]:
    """``"all"`` or ``"attr_acc,fid,…"`` → protocol names. ``all`` keeps those whose needs are ``available``."""
    registry = load_all()
    if spec.strip() == "all":
        return [n for n, m in registry.items() if m.default and (available is None or m.needs <= available)]
    names = []
    for raw in spec.split(","):
        raw = raw.strip()
        if not raw:
            continue
        name = ALIASES.get(raw, raw)
        if name not in registry:
            known = ", ".join(sorted([*registry, *ALIASES]))
            raise T2IError(f"unknown metric {raw!r}", hint=f"choose from: all, {known}")
        names.append(name)
    return names
