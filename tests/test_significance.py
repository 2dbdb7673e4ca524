"""Hamilton's R-ratio test: a drop in R that noise explains is not kept, a large one is."""

import math

from model.significance import critical_ratio, effective_observations, richer_is_better


def test_critical_ratio_grows_with_extra_parameters_and_falls_with_observations():
    assert critical_ratio(0, 100, 10) == 1.0
    assert 1.0 < critical_ratio(1, 1000, 10) < critical_ratio(4, 1000, 10)
    assert critical_ratio(4, 10000, 10) < critical_ratio(4, 200, 10)
    assert math.isinf(critical_ratio(2, 10, 10))


def test_hamilton_table_value():
    # Hamilton (1965) tabulates R_{1,100,0.05} ≈ 1.0192: F(0.95; 1, 100) = 3.936, √(3.936/100 + 1)
    assert abs(critical_ratio(1, 110, 10, alpha=0.05) - 1.0195) < 0.0005


def test_richer_model_kept_only_beyond_noise():
    assert richer_is_better(10.0, 8.0, extra=2, observations=500, parameters=20)
    assert not richer_is_better(10.0, 9.98, extra=2, observations=500, parameters=20)
    assert not richer_is_better(float("nan"), 5.0, extra=1, observations=500, parameters=20)


def test_effective_observations_count_one_per_line_width():
    assert effective_observations(4000, 0.02, 0.1) == 800
    assert effective_observations(100, 0.05, 0.01) == 100
