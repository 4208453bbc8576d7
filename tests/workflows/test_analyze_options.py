"""linlens.workflows.analyze_options: the option/route tables against the CLI that parses them (every option of
``linlens analyze`` is a field, spelled on the command line as FLAGS says), ``AnalyzeOptions``' validation at the
edges of each range, ``given``/``to_dict`` as properties over every field, and ``routes_text`` read back. The plan
that uses these tables (options × routes) is tested in test_analyze_dispatch.py."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import typer

from linlens.cli import app
from linlens.errors import ConfigError
from linlens.workflows.analyze_options import (
    FLAGS,
    MAX_N_BOOT,
    OPTION_ROUTES,
    ROUTES,
    SHORT,
    AnalyzeOptions,
    Route,
    refuse_unused,
    routes_text,
    uses,
)

#: a non-default value for every field but model and inputs
OTHER = {"out": Path("elsewhere"), "force": True, "batch_size": 7, "device": "cpu", "seed": 3, "trust_model": True,
         "reference": "r.npy", "fit_intercept": False, "dask": "local", "output_index": 1, "output_key": None,
         "max_memory": 10**9, "components": 2, "targets": Path("x.npy"), "operator": "A.npy", "noise_std": 0.1,
         "n_boot": 5, "train_inputs": Path("a.npy"), "train_targets": Path("b.npy"),
         "prior_covariance": Path("S.npy"), "assume": "dense", "local_samples": 4, "full_spectrum": True}
OTHER["output_key"] = "out"  # (alone: output_index and output_key together are refused)
FIELDS = [f.name for f in fields(AnalyzeOptions) if f.name not in ("model", "inputs")]


def test_the_table_covers_every_option():
    assert set(OPTION_ROUTES) == {f.name for f in fields(AnalyzeOptions)}
    assert all(r in ROUTES for used in OPTION_ROUTES.values() for r in used)
    # every option of the command is a field of the options object (the CLI only parses), and its help names
    # the routes that use it
    cmd = typer.main.get_command(app).commands["analyze"]
    names = {p.name for p in cmd.params}
    assert names <= {f.name for f in fields(AnalyzeOptions)}, names - {f.name for f in fields(AnalyzeOptions)}
    for p in cmd.params:
        if OPTION_ROUTES[p.name] != frozenset(ROUTES):
            assert "(routes: " in p.help, p.name
    # and FLAGS is what the user types to give the option (refusals name it): for a switch on by default
    # (fit_intercept), its "off" spelling
    spelled = {p.name: p for p in cmd.params}
    assert {k for k in FLAGS if k not in spelled} == {"local_samples"}  # the one Python-only option
    defaults = {f.name: f.default for f in fields(AnalyzeOptions)}
    for k, p in spelled.items():
        assert FLAGS[k] in (p.secondary_opts if defaults.get(k) is True else p.opts), (k, FLAGS[k], p.opts)


@pytest.mark.parametrize("name", FIELDS)
def test_given_names_exactly_the_fields_set_and_to_dict_round_trips(name):
    assert set(OTHER) == set(FIELDS)
    base = AnalyzeOptions(model="m.pt", inputs="y.npy")
    assert base.given() == ["model", "inputs"]
    o = AnalyzeOptions(model="m.pt", inputs="y.npy", **{name: OTHER[name]})
    assert o.given() == ["model", "inputs", name]
    d = json.loads(json.dumps(o.to_dict()))  # JSON-safe
    assert AnalyzeOptions(**d) == o


@pytest.mark.parametrize("name", FIELDS)
def test_refuse_unused_refuses_exactly_the_routes_that_do_not_use_an_option(name):
    o = AnalyzeOptions(model="m.pt", inputs="y.npy", **{name: OTHER[name]})
    for r in ROUTES:
        if uses(r, name):
            refuse_unused(o, {r}, ROUTES[r])
        else:
            with pytest.raises(ConfigError) as e:
                refuse_unused(o, {r}, ROUTES[r])
            users = ", ".join(ROUTES[u] for u in ROUTES if u in OPTION_ROUTES[name])
            want = f"{FLAGS[name]} is not used by the {ROUTES[r]} route (it is used by: {users}); drop it"
            assert str(e.value) == want


@pytest.mark.parametrize("name", [f.name for f in fields(AnalyzeOptions)])
def test_routes_text_reads_back_as_the_routes_that_use_the_option(name):
    t = routes_text(name)
    if OPTION_ROUTES[name] == frozenset(ROUTES):
        assert t == "all routes"
    else:
        back = {k for k, v in SHORT.items() if v in t.removeprefix("routes: ").split(", ")}
        assert back == set(OPTION_ROUTES[name])


@pytest.mark.parametrize("kw,ok", [
    ({"batch_size": 1}, True), ({"batch_size": 0}, False), ({"batch_size": True}, False),
    ({"batch_size": 2.0}, False), ({"batch_size": np.int64(3)}, True),
    ({"output_index": 0, "output_key": "y"}, False), ({"assume": "dense"}, True), ({"assume": "banded"}, False),
    ({"seed": -1}, False), ({"device": "tpu"}, False),
])
def test_construction_checks_at_the_edges(kw, ok):
    if ok:
        AnalyzeOptions(model="m.pt", inputs="y.npy", **kw)
    else:
        with pytest.raises(ConfigError):
            AnalyzeOptions(model="m.pt", inputs="y.npy", **kw)


@pytest.mark.parametrize("kw,ok", [
    ({"components": 1}, True), ({"components": 0}, False), ({"components": True}, False),
    ({"n_boot": MAX_N_BOOT}, True), ({"n_boot": MAX_N_BOOT + 1}, False), ({"n_boot": 0}, False),
    ({"local_samples": 0}, True), ({"local_samples": -1}, False),
    ({"noise_std": 1e-9}, True), ({"noise_std": 0.0}, False), ({"noise_std": float("nan")}, False),
    ({"max_memory": 1}, True), ({"max_memory": 0}, False), ({"max_memory": True}, False),
])
def test_check_values_at_the_edges(kw, ok):
    o = AnalyzeOptions(model="m.pt", inputs="y.npy", **kw)  # range checks wait for the route (check_values)
    if ok:
        o.check_values()
    else:
        with pytest.raises(ConfigError, match="^" + re.escape(FLAGS[next(iter(kw))])) as e:
            o.check_values()
        assert "\n" not in str(e.value)


def test_paths_are_normalised_and_route_lines_name_the_label():
    o = AnalyzeOptions(model=Path("m.pt"), inputs="y.npy", targets="x.npy", reference=Path("r.npy"))
    assert o.model == "m.pt" and o.inputs == Path("y.npy") and o.targets == Path("x.npy") and o.reference == "r.npy"
    for name, label in ROUTES.items():
        r = Route(name, "because")
        assert r.line == f"route: {label} — because" and r.summary({"route": "x", "a": 1}) == {"route": label, "a": 1}
