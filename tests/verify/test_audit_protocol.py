"""The E-protocol helpers (INVENTORY §4.0) of verify.audits.protocol: bootstrap CIs of paired
differences, the decision rules applied to them, seeds and tuning budgets."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from verify.audits import protocol
from verify.audits.framework import Evaluation

FALSE_ALARM = 1e-3


def test_paired_bootstrap_covers_the_true_difference_at_about_the_nominal_rate():
    # known distribution: per seed a shared N(0, 2²) effect plus N(0, 1) noise per arm, true
    # mean difference 0.3; 200 independent experiments of 40 paired seeds each
    reps, n, delta = 200, 40, 0.3
    rng = np.random.default_rng(20240611)
    covered = 0
    for r in range(reps):
        shared = 2.0 * rng.standard_normal(n)
        a = shared + delta + rng.standard_normal(n)
        b = shared + rng.standard_normal(n)
        lo, hi = protocol.paired_bootstrap(a, b, seed=r).ci
        covered += lo <= delta <= hi
    # two-sided binomial acceptance region at the nominal 0.95, false-alarm rate 1e-3
    low = stats.binom.ppf(FALSE_ALARM / 2, reps, protocol.LEVEL)
    high = stats.binom.isf(FALSE_ALARM / 2, reps, protocol.LEVEL)
    assert low <= covered <= high, (covered, low, high)


def test_all_equal_differences_give_a_zero_width_ci():
    comp = protocol.paired_bootstrap([3.0, 5.0, 7.5, 1.0], [1.0, 3.0, 5.5, -1.0])
    assert comp.ci == (2.0, 2.0) and comp.mean_diff == 2.0 and comp.std_diff == 0.0
    assert comp.mean_a == pytest.approx(4.125) and comp.std_a == pytest.approx(
        np.std([3.0, 5.0, 7.5, 1.0], ddof=1))
    one = protocol.paired_bootstrap([4.0], [1.5])  # a single seed: the point, std 0
    assert one.ci == (2.5, 2.5) and one.std_a == 0.0 and one.n == 1
    # a decision on a zero-width CI at the threshold: non-strict holds, strict does not
    zero = protocol.paired_bootstrap([1.0, 2.0], [1.0, 2.0])
    assert protocol.decide(zero, "at_least") == (True, 0.0)
    assert protocol.decide(zero, "greater") == (False, 0.0)
    assert protocol.decide(zero, "at_most")[0] and not protocol.decide(zero, "less")[0]


def test_pairing_narrows_the_ci_when_the_arms_share_noise():
    rng = np.random.default_rng(7)
    shared = 5.0 * rng.standard_normal(10)
    a = shared + 0.5 + 0.1 * rng.standard_normal(10)
    b = shared + 0.1 * rng.standard_normal(10)
    paired = protocol.paired_bootstrap(a, b)
    unpaired = protocol.unpaired_bootstrap(a, b)
    assert paired.mean_diff == pytest.approx(unpaired.mean_diff, rel=1e-12)
    width = paired.ci[1] - paired.ci[0]
    assert width < 0.1 * (unpaired.ci[1] - unpaired.ci[0])
    assert paired.ci[0] > 0.0 > unpaired.ci[0]  # only the paired design resolves the effect
    assert paired.paired and not unpaired.paired


def test_bootstrap_is_reproducible_with_its_seed():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    assert protocol.paired_bootstrap(a, b, seed=11) == protocol.paired_bootstrap(a, b, seed=11)
    assert protocol.paired_bootstrap(a, b, seed=11).ci != protocol.paired_bootstrap(
        a, b, seed=12).ci
    assert protocol.paired_bootstrap(a, b, seed=5).seed == 5


def test_ci_is_the_percentile_of_resampled_means():
    # independent re-implementation: the same index draw, np.percentile of the means
    d = np.array([0.3, -1.2, 2.5, 0.7, 1.1, -0.4])
    idx = np.random.default_rng(4).integers(0, d.size, size=(500, d.size))
    means = d[idx].mean(axis=1)
    comp = protocol.paired_bootstrap(d, 0.0, n_boot=500, seed=4, level=0.9)
    np.testing.assert_allclose(comp.ci, np.percentile(means, [5.0, 95.0]), rtol=1e-12)
    assert comp.level == 0.9 and comp.n_boot == 500


def test_scalar_second_arm_is_a_one_sample_ci():
    a = [1.0, 2.0, 4.0, 3.0, 0.5]
    assert protocol.paired_bootstrap(a, 1.5) == protocol.paired_bootstrap(a, [1.5] * 5)
    # a statistic that is a mean: bootstrap_statistic reproduces the same interval
    d = np.asarray(a) - 1.5
    est, ci = protocol.bootstrap_statistic(5, lambda i: float(d[i].mean()))
    assert est == pytest.approx(d.mean()) and ci == protocol.paired_bootstrap(a, 1.5).ci


@pytest.mark.parametrize("a, b", [([], []), ([1.0, 2.0], [1.0]), ([1.0, math.inf], [0.0, 0.0]),
                                  ([1.0, math.nan], [0.0, 0.0])])
def test_bad_arms_raise_value_error(a, b):
    with pytest.raises(ValueError):
        protocol.paired_bootstrap(a, b)


def test_decision_rules_and_their_text():
    above = protocol.paired_bootstrap([2.0, 3.0, 2.5], [1.0, 1.0, 1.0])  # CI in [1, 2]
    assert protocol.decide(above, "greater") == (True, above.ci[0])
    assert protocol.decide(above, "greater", 1.5)[0] is False
    assert protocol.decide(above, "less") == (False, -above.ci[1])
    assert protocol.decide(above, "at_most", 2.0) == (True, 2.0 - above.ci[1])
    with pytest.raises(ValueError, match="side"):
        protocol.decide(above, "bigger")
    assert "lies strictly above 0" in protocol.rule("greater")
    assert "upper end ≤ 0.75" in protocol.rule("at_most", 0.75)


def test_relation_detail_is_json_and_consistent():
    a, b = [10.0, 12.0, 11.0, 13.0, 12.0], [14.0, 15.0, 13.0, 16.0, 15.0]
    ev = protocol.relation(a, b, "less", arms=("N x", "N y"), seeds=protocol.seeds(1),
                           censored_at=20)
    assert isinstance(ev, Evaluation) and ev.ok is True
    d = ev.detail
    assert d["arms"]["N x"] == {"mean": pytest.approx(11.6), "std": pytest.approx(
        np.std(a, ddof=1))}
    assert d["mean_difference"] == pytest.approx(-3.0)
    assert d["ci95"][0] <= -3.0 <= d["ci95"][1] < 0 and ev.discrepancy == -d["ci95"][1]
    assert d["seeds"] == [5, 6, 7, 8, 9] and d["per_seed"]["N y"] == b
    assert d["decision"] == "holds" and d["censored_at"] == 20
    json.dumps(d)  # JSON-able as recorded
    est = protocol.interval_relation(0.6, (0.5, 0.8), "at_most", 0.75, "the exponent")
    assert est.ok is False and est.discrepancy == pytest.approx(-0.05)
    assert est.detail["decision"] == "fails" and "paired" not in est.detail["decision_rule"]


def test_seeds_censoring_and_equal_tuning_budget():
    assert protocol.seeds(0) == (0, 1, 2, 3, 4) and protocol.seeds(2, 3) == (6, 7, 8)
    assert protocol.censor(math.inf, 100) == 100.0 and protocol.censor(40, 100) == 40.0
    grid = protocol.log_grid(1e-3, 1e-1)
    assert len(grid) == protocol.TUNING_GRID == 7
    np.testing.assert_allclose(np.diff(np.log10(grid)), 1.0 / 3.0)
    result = protocol.tune(lambda lr: (math.log10(lr) + 2.0) ** 2 if lr < 0.05 else math.inf,
                           grid)
    assert result["argbest"] == pytest.approx(1e-2) and result["best"] == pytest.approx(0.0,
                                                                                       abs=1e-20)
    assert result["trials"] == 7
    assert protocol.tune(lambda lr: math.inf, grid)["argbest"] is None
    stats_ = protocol.arm_stats({"x": [1.0, 3.0], "y": [2.0]})
    assert stats_ == {"x": {"mean": 2.0, "std": pytest.approx(math.sqrt(2))},
                      "y": {"mean": 2.0, "std": 0.0}}
