"""t2igan.metrics — evaluation with the protocol stated beside every number (see docs/metrics.md).

```python
from t2igan.metrics import train_evaluator, load_evaluator, evaluate_generator, pipeline_generate
ev = train_evaluator(cache, size=64)                     # attribute evaluator on real images (~1 min CPU)
generate, snapshot = pipeline_generate("runs/demo", cache)
res = evaluate_generator(cache, generate, "attr_acc,fid", evaluator=ev, n=500)
comparison = evaluate_runs(["runs/gan", "runs/gan-int-cls"], "attr_acc,fid", n=500)  # what `t2igan evaluate` does
```
Metric files (one per protocol, registered in ``registry.REGISTRY``): attribute_accuracy, inception_score, fid, kid,
r_precision, nearest_neighbours, diversity.
"""

from t2igan.data.cache import open_cache
from t2igan.metrics.evaluate import (
    Evaluation,
    RunEvaluation,
    attribute_accuracy_for,
    evaluate_generator,
    evaluate_runs,
    record_results,
    run_metrics,
)
from t2igan.metrics.evaluator import AttributeEvaluator, get_or_train_evaluator, load_evaluator, train_evaluator
from t2igan.metrics.sources import pipeline_generate

__all__ = [
    "AttributeEvaluator",
    "Evaluation",
    "RunEvaluation",
    "attribute_accuracy_for",
    "evaluate_generator",
    "evaluate_runs",
    "get_or_train_evaluator",
    "load_evaluator",
    "open_cache",
    "pipeline_generate",
    "record_results",
    "run_metrics",
    "train_evaluator",
]
