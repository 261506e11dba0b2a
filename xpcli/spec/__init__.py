"""Selectors: metric specs, ``--where`` expressions and run pickers (parsed, never eval-ed).

- :mod:`xpcli.spec.metric`: the metric spec grammar, its reducers (:data:`REDUCERS`) and
  expansion of a spec against the points present;
- :mod:`xpcli.spec.where`: the ``--where`` tokenizer, parser and compiler to Polars;
- :mod:`xpcli.spec.picker`: run pickers (a run id, ``best:SPEC``, ``worst:SPEC``).

Computing with them (a series reduced to one number per run, a picker resolved to a run)
is :mod:`xpcli.analysis.reduce`. ``docs/specs.md``, generated from these modules, is the
grammar for users.
"""

from .metric import (
    POINT_COLUMNS,
    REDUCERS,
    Column,
    MetricSpec,
    Reduce,
    Reducer,
    context_keys,
    expand,
    parse_metric_spec,
    parse_metric_specs,
    series_filter,
    split_list,
)
from .picker import Picker, parse_picker
from .where import SchemaLike, Where, compile_where, metric_names_in, parse_where

__all__ = [
    "POINT_COLUMNS",
    "REDUCERS",
    "Column",
    "MetricSpec",
    "Picker",
    "Reduce",
    "Reducer",
    "SchemaLike",
    "Where",
    "compile_where",
    "context_keys",
    "expand",
    "metric_names_in",
    "parse_metric_spec",
    "parse_metric_specs",
    "parse_picker",
    "parse_where",
    "series_filter",
    "split_list",
]
