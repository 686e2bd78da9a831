"""One validation rule for every option: wsnotebook._validate and the sans-I/O classes using it."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import pytest
from _helpers import FakeClock

from wsnotebook._validate import (
    arg_port,
    arg_positive_float,
    arg_seconds,
    bounded,
    integer,
    port,
)
from wsnotebook.errors import ConfigError
from wsnotebook.frame.idset import IdSet
from wsnotebook.protocol import (
    Batcher,
    RateLimiter,
)
from wsnotebook.stats import LatencyStats, RateMeter


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda v: Batcher(v, clock=FakeClock()), "batch size"),
        (lambda v: Batcher(10, v, clock=FakeClock()), "batch interval"),
        (lambda v: Batcher(10, clock=FakeClock(), max_bytes=v), "batch max_bytes"),
        (lambda v: RateMeter(window=v, clock=FakeClock()), "rate window"),
        (lambda v: LatencyStats(v), "latency sample size"),
        (lambda v: IdSet(v), "max_intervals"),
        (lambda v: RateLimiter(v, 10, clock=FakeClock()), "rate"),
        (lambda v: RateLimiter(1.0, v, clock=FakeClock()), "burst"),
        (lambda v: RateLimiter(1.0, 10, max_keys=v, clock=FakeClock()), "max_keys"),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, 2.5, "3", 0])
def test_sans_io_bounds_refuse_nan_inf_bools_and_wrong_types(
    build: Any, name: str, bad: Any
) -> None:
    """NaN passed every '< 1' check (IdSet(nan) kept no bound, RateMeter(window=nan) every
    bucket); 2.5 as a size was a TypeError deep inside, not a ConfigError naming it."""
    if name in ("batch interval", "rate") and (bad == 0 or bad == 2.5):
        build(bad)  # 0 and 2.5 are fine there
        return
    if name == "rate window" and bad == 2.5:
        build(bad)
        return
    with pytest.raises(ConfigError, match=name):
        build(bad)


@pytest.mark.parametrize("bad", [True, 2.5, "3", None, float("nan")])
def test_integer_refuses_bools_floats_strings_and_none_naming_the_option(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"^queue_size must be an integer, got "):
        integer("queue_size", bad)


def test_integer_takes_numpy_integers_and_states_the_bound_it_failed() -> None:
    assert integer("n", np.int64(7), 0, 10) == 7
    with pytest.raises(ConfigError, match=r"^n must be >= 1, got 0$"):
        integer("n", 0, 1)
    with pytest.raises(ConfigError, match=r"^n must be in 1\.\.5, got 6$"):
        integer("n", 6, 1, 5)


def test_bounded_returns_the_value_and_names_unit_and_open_bound() -> None:
    assert bounded("interval", 0.5, 0, 60, unit=" s") == 0.5
    with pytest.raises(ConfigError, match=r"^interval must be in 0\.\.60 s, got 61$"):
        bounded("interval", 61, 0, 60, unit=" s")
    with pytest.raises(ConfigError, match=r"^window must be >= 1 s, got inf$"):
        bounded("window", math.inf, 1, unit=" s")


@pytest.mark.parametrize("value", [-1, 65536, True])
def test_port_is_0_to_65535(value: Any) -> None:
    with pytest.raises(ConfigError, match="port"):
        port("port", value)
    assert port("port", 0) == 0 and port("port", 65535) == 65535


@pytest.mark.parametrize("text", ["inf", "nan", "0", "-1", "abc"])
def test_the_cli_and_the_magics_refuse_the_same_non_positive_or_infinite_numbers(
    text: str,
) -> None:
    """One rule for both front ends (the magics used to accept ``inf``)."""
    with pytest.raises(argparse.ArgumentTypeError):
        arg_positive_float(text)


def test_argparse_types_accept_what_they_document() -> None:
    assert arg_positive_float("0.25") == 0.25
    assert arg_seconds("0.01") == 0.01 and arg_seconds("86400") == 86_400
    assert arg_port("0") == 0 and arg_port("8080") == 8080
    for bad_seconds in ("0.001", "86401", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            arg_seconds(bad_seconds)
    for bad_port in ("65536", "-1", "http"):
        with pytest.raises(argparse.ArgumentTypeError):
            arg_port(bad_port)
