"""One source for each component's parameters, its constructor: every config schema and every recorded
``options()`` / ``settings()`` covers the constructor's keyword arguments, so a new argument can be set
from the command line and reaches provenance and the resume check (``search.json``)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import backends
from backends.nb201 import NB201Backend
from backends.surrogate import SurrogateBackend
from backends.table import TableBackend
from backends.training import TrainingBackend
from harness import CellSpace
from harness.app.config import (
    NB201BackendConfig,
    SurrogateBackendConfig,
    TableBackendConfig,
    TrainingBackendConfig,
    schema_of,
)
from harness.search import PNAS, POPNAS, RandomSearch, RegularizedEvolution

#: Constructor arguments a job config sets elsewhere, by why.
SPACE = {"space", "max_blocks", "lookback"}  # the experiment's ``space``
EXECUTOR = {"executor", "workers"}  # the ``executor`` group

BACKENDS = {
    "surrogate": (SurrogateBackend, SurrogateBackendConfig, SPACE),
    "training": (TrainingBackend, TrainingBackendConfig, SPACE | EXECUTOR),
    "table": (TableBackend, TableBackendConfig, SPACE),
    "nb201": (NB201Backend, NB201BackendConfig, set()),
}

#: Search arguments a job config sets elsewhere: the space and backend are built from their own groups,
#: ``seed`` is the root seed, the predictor is the ``predictor`` group, the time regressor is named by
#: ``time_regressor`` and ``time_encoding``, and a drift monitor is an object the recorder hands over.
SEARCH_ELSEWHERE = {"space", "backend", "seed", "predictor", "predictor_options", "time_regressor",
                    "drift_monitor"}
#: Search arguments ``settings()`` leaves out: how cells are batched changes no result (a resumed run
#: may use another chunk), and a drift monitor is recorded only when there is one.
NOT_RECORDED = {"space", "backend", "eval_chunk", "drift_monitor"}

STRATEGIES = (PNAS, POPNAS, RandomSearch, RegularizedEvolution)


def keywords(component: type) -> set[str]:
    """The keyword arguments of ``component``'s constructor."""
    return {name for name, p in inspect.signature(component.__init__).parameters.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_schema_covers_its_constructor(name):
    component, schema, elsewhere = BACKENDS[name]
    fields = {f.name for f in dataclasses.fields(schema)} - {"name"}
    assert keywords(component) - elsewhere - fields == set()
    assert fields <= keywords(component)  # and offers nothing the constructor does not take


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_records_every_constructor_argument(name):
    component = BACKENDS[name][0]
    assert keywords(component) - set(backends.make(name).options()) == set()


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_every_search_schema_covers_its_constructor(strategy):
    fields = {f.name for f in dataclasses.fields(schema_of("search", {"name": strategy.name}))}
    assert keywords(strategy) - SEARCH_ELSEWHERE - fields == set()


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_every_search_records_every_setting_in_search_json(strategy):
    space = CellSpace.pnas(max_blocks=2)
    settings = set(strategy(space, backends.make("surrogate", space=space)).settings())
    assert keywords(strategy) - NOT_RECORDED - settings == set()


def test_the_check_finds_a_missing_parameter():
    """The coverage check is not vacuous: the surrogate's options before issue 10 lacked reference_size."""
    recorded = set(backends.make("surrogate").options()) - {"reference_size"}
    assert keywords(SurrogateBackend) - recorded == {"reference_size"}
