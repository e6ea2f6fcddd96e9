"""The statistics of a comparison against hand computations: mean, std (n - 1), the Student-t interval from
a printed t table, the paired t-test (closed-form t distribution for 2 degrees of freedom) and Welch's test
(Welch-Satterthwaite degrees of freedom); then the group table of a runs table with failed, pruned and single
replicates."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from rnnexp.sweeps.comparison import compare_groups
from rnnexp.sweeps.statistics import compare, spread

T_975 = {1: 12.7062, 2: 4.3027, 3: 3.1824}  # two-sided 95% quantiles of Student's t, from a printed table


def test_spread_is_mean_sample_std_and_t_interval():
    result = spread([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # sum of squared deviations / (n - 1)
    half = T_975[3] * std / math.sqrt(4)
    assert (result.n, result.mean, result.std) == (4, 2.5, pytest.approx(std))
    assert result.ci_low == pytest.approx(2.5 - half, abs=1e-4)
    assert result.ci_high == pytest.approx(2.5 + half, abs=1e-4)


def test_one_value_has_no_spread_and_none_has_no_mean():
    one = spread([0.7])
    assert one.n == 1 and one.mean == 0.7
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    assert spread([]).n == 0 and math.isnan(spread([]).mean)
    same = spread([0.5, 0.5, 0.5])
    assert (same.std, same.ci_low, same.ci_high) == (0.0, 0.5, 0.5)


def test_identical_seeds_are_compared_with_a_paired_test():
    a, b = {1: 1.0, 2: 2.0, 3: 4.0}, {3: 4.6, 1: 1.5, 2: 2.1}  # same seeds, any order
    diff = [-0.5, -0.1, -0.6]
    sd = math.sqrt(sum((d + 0.4) ** 2 for d in diff) / 2)  # mean difference -0.4
    t = -0.4 / (sd / math.sqrt(3))
    p = 1 - abs(t) / math.sqrt(2 + t * t)  # two-sided p of Student's t with 2 degrees of freedom
    result = compare(a, b)
    assert result.test == "paired t"
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(p)
    assert result.effect == pytest.approx(-0.4 / sd)  # Cohen's d_z


def test_different_seeds_are_compared_with_welchs_test():
    a, b = {1: 1.0, 2: 2.0, 3: 4.0}, {4: 3.0, 5: 5.0}
    va = sum((x - 7 / 3) ** 2 for x in a.values()) / 2  # sample variances (n - 1)
    vb = ((3.0 - 4.0) ** 2 + (5.0 - 4.0) ** 2) / 1
    se2 = va / 3 + vb / 2
    t = (7 / 3 - 4.0) / math.sqrt(se2)
    df = se2**2 / ((va / 3) ** 2 / 2 + (vb / 2) ** 2 / 1)  # Welch-Satterthwaite
    result = compare(a, b)
    assert result.test == "Welch t"
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert result.effect == pytest.approx((7 / 3 - 4.0) / math.sqrt((va + vb) / 2))  # Cohen's d


def test_no_test_with_a_single_replicate_or_without_variance_and_it_says_why():
    result = compare({1: 1.0, 2: 2.0}, {1: 3.0})
    assert result.test == "none" and math.isnan(result.p_value) and "n = 1" in result.note
    shifted = compare({1: 0.5, 2: 0.6}, {1: 0.3, 2: 0.4})  # differences 0.2 up to rounding
    assert (
        shifted.test == "paired t" and math.isnan(shifted.p_value) and "constant difference" in shifted.note
    )


def runs_table(rows: list[tuple], mode: str = "min") -> pd.DataFrame:
    """A runs table as rnnexp.sweeps.records.load_sweep returns it."""
    table = pd.DataFrame(rows, columns=["job", "status", "model", "seed", "objective", "test/mse", "run_dir"])
    table["environment"] = None
    table.attrs.update(optimized_metric="val/mse_best", mode=mode, overrides=["model", "seed"])
    return table


def test_groups_count_failed_and_pruned_replicates_and_rank_by_mean():
    runs = runs_table(
        [
            (0, "completed", "rnn", 1, 0.50, 0.40, ""),
            (1, "failed", "rnn", 2, None, None, ""),
            (2, "completed", "rnn", 3, 0.70, 0.60, ""),
            (3, "completed", "gru", 1, 0.30, 0.20, ""),
            (4, "completed", "gru", 2, 0.35, 0.25, ""),
            (5, "pruned", "gru", 3, None, None, ""),
            (6, "completed", "lstm", 1, 0.90, 0.80, ""),
        ]
    )
    table = compare_groups(runs).set_index("group")
    assert list(table.index) == ["model=gru", "model=rnn", "model=lstm"]  # best (lowest) first
    assert list(table["rank"]) == [1, 2, 3]
    rnn, gru, lstm = table.loc["model=rnn"], table.loc["model=gru"], table.loc["model=lstm"]
    assert (rnn["n"], rnn["failed"], rnn["pruned"]) == (2, 1, 0)
    assert "1 failed (not in the mean)" in rnn["note"]
    assert rnn["objective_mean"] == pytest.approx(0.6)  # the failed replicate is not a zero
    assert rnn["objective_std"] == pytest.approx(math.sqrt(0.02))
    assert rnn["objective_ci_high"] == pytest.approx(
        0.6 + T_975[1] * math.sqrt(0.02) / math.sqrt(2), abs=1e-3
    )
    assert rnn["test/mse_mean"] == pytest.approx(0.5)
    assert (gru["n"], gru["pruned"], gru["test"]) == (2, 1, "best")
    assert "1 pruned" in gru["note"]
    # rnn ran seeds 1 and 3, gru 1 and 2: not the same seeds, so Welch
    assert rnn["test"] == "Welch t" and 0 < rnn["p_value"] < 1
    assert lstm["n"] == 1 and "n = 1" in lstm["note"] and math.isnan(lstm["objective_ci_low"])
    assert lstm["test"] == "none"
    assert (table["environment"] == "unknown (not recorded)").all()


def test_groups_flag_runs_whose_recorded_environment_differs():
    runs = runs_table(
        [
            (0, "completed", "rnn", 1, 0.5, 0.4, ""),
            (1, "completed", "rnn", 2, 0.6, 0.5, ""),
            (2, "completed", "gru", 1, 0.3, 0.2, ""),
            (3, "completed", "gru", 2, 0.45, 0.3, ""),
        ],
        mode="max",
    )
    runs["environment"] = ['{"threads": 1}', '{"threads": 2}', '{"threads": 1}', '{"threads": 1}']
    table = compare_groups(runs).set_index("group")
    assert table.loc["model=rnn", "rank"] == 1  # mode max: the largest mean wins
    assert table.loc["model=rnn", "environment"] == "differs: threads"
    assert table.loc["model=gru", "test"] == "paired t"  # both ran seeds 1 and 2
