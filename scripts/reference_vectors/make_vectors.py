"""Write reference vectors for experiments/stats.py from independent libraries.

Runs OUTSIDE the project venv: gbstats 0.8.0 pins numpy<2 and pandas<2. See README.md here.

    python make_vectors.py --which gbstats            # tests/experiments/vectors/gbstats.json
    python make_vectors.py --which spotify            # tests/experiments/vectors/spotify_confidence.json
    python make_vectors.py --which gbstats_bayes      # tests/experiments/vectors/gbstats_bayes.json
    python make_vectors.py --which all                # all three (default), if both import

Inputs are deterministic (fixed tables below, no RNG), so regenerating gives identical files
unless the library changes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "experiments" / "vectors"

# (label, n_c, mean_c, sd_c, n_t, mean_t, sd_t): per-user metric summaries. The sums handed
# to the libraries are derived from these, then stored as the inputs.
MEAN_CASES = [
    ("small_equal", 20, 10.0, 2.0, 20, 11.0, 2.0),
    ("tiny_n2", 2, 5.0, 1.0, 2, 7.0, 1.5),
    ("tiny_n3_unequal", 3, 1.0, 0.5, 5, 1.4, 0.9),
    ("medium_null", 500, 3.2, 1.1, 500, 3.2, 1.1),
    ("medium_pos", 800, 3.2, 1.1, 820, 3.35, 1.2),
    ("medium_neg", 800, 3.2, 1.1, 760, 3.05, 1.0),
    ("unequal_arms", 5000, 12.5, 8.0, 1250, 13.1, 9.5),
    ("very_unequal_var", 300, 1.0, 0.1, 300, 1.05, 3.0),
    ("negative_means", 400, -2.0, 1.5, 400, -1.8, 1.6),
    ("negative_control_pos_treat", 200, -0.2, 1.0, 220, 0.1, 1.1),
    ("small_mean_large_var", 1000, 0.05, 2.0, 1000, 0.06, 2.2),
    ("large_n", 200000, 4.1, 3.3, 200000, 4.12, 3.31),
    ("large_unequal", 90000, 50.0, 40.0, 10000, 51.5, 42.0),
    ("revenue_like", 12000, 1.8, 14.0, 12100, 2.0, 15.5),
    ("decimal_means", 37, 0.333, 0.111, 41, 0.377, 0.123),
    ("huge_effect", 100, 1.0, 0.2, 100, 3.0, 0.25),
    ("n2_vs_big", 2, 4.0, 2.0, 1000, 4.5, 2.0),
    ("sd_ratio_10", 150, 20.0, 1.0, 150, 19.0, 10.0),
    ("three_digit", 1500, 250.0, 60.0, 1480, 247.0, 58.0),
    ("extreme", 10_000_000, 1e-3, 0.05, 10_000_000, 1.2e-3, 0.055),
]

# (label, conversions_c, n_c, conversions_t, n_t)
PROPORTION_CASES = [
    ("small", 3, 20, 7, 20),
    ("tiny_n2", 1, 2, 2, 3),
    ("half", 50, 100, 60, 100),
    ("low_rate", 12, 4000, 19, 4100),
    ("typical", 480, 10000, 530, 10000),
    ("typical_neg", 530, 10000, 480, 10000),
    ("null", 250, 5000, 250, 5000),
    ("unequal_arms", 900, 30000, 160, 5000),
    ("high_rate", 950, 1000, 970, 1000),
    ("near_one", 9990, 10000, 9995, 10000),
    ("near_zero", 2, 10000, 9, 10000),
    ("mid_small", 17, 61, 25, 59),
    ("large", 120000, 1000000, 121500, 1000000),
    ("large_unequal", 30000, 600000, 5200, 100000),
    ("odd_sizes", 333, 1234, 401, 1301),
    ("strong_effect", 100, 1000, 300, 1000),
    ("one_vs_many", 1, 5, 400, 1000),
    ("tenth", 101, 1010, 113, 1009),
    ("quarter", 2500, 10000, 2600, 10000),
    ("extreme", 1_000_000, 50_000_000, 1_003_000, 50_000_000),
]

# Ratio metrics: (label, n, sum_x, sum_x_sq, sum_y, sum_y_sq, sum_xy) per arm
RATIO_CASES = [
    ("sessions_per_visit",
     (1000, 2500.0, 9800.0, 1500.0, 3100.0, 5200.0),
     (1000, 2700.0, 11000.0, 1520.0, 3200.0, 5600.0)),
    ("revenue_per_order",
     (5000, 90000.0, 4.2e6, 6000.0, 9800.0, 160000.0),
     (5100, 96000.0, 4.6e6, 6050.0, 9900.0, 172000.0)),
    ("small",
     (30, 45.0, 90.0, 30.0, 38.0, 55.0),
     (28, 50.0, 110.0, 29.0, 37.0, 60.0)),
    ("unequal",
     (20000, 31000.0, 90000.0, 24000.0, 40000.0, 47000.0),
     (4000, 6500.0, 19500.0, 4900.0, 8300.0, 9800.0)),
    ("null",
     (2000, 4000.0, 12000.0, 3000.0, 6000.0, 7000.0),
     (2000, 4000.0, 12000.0, 3000.0, 6000.0, 7000.0)),
]

# SRM: (label, counts, weights)
SRM_CASES = [
    ("balanced", [5000, 5000], [0.5, 0.5]),
    ("slight", [5050, 4950], [0.5, 0.5]),
    ("flagged", [5300, 4700], [0.5, 0.5]),
    ("unequal_weights_ok", [8010, 1990], [0.8, 0.2]),
    ("unequal_weights_bad", [8200, 1800], [0.8, 0.2]),
    ("three_arms", [3300, 3350, 3350], [1 / 3, 1 / 3, 1 / 3]),
    ("three_arms_bad", [3000, 3500, 3500], [1 / 3, 1 / 3, 1 / 3]),
    ("small", [12, 8], [0.5, 0.5]),
    ("four_arms_uneven", [4000, 2000, 2100, 1900], [0.4, 0.2, 0.2, 0.2]),
    ("large", [1_000_000, 1_002_000], [0.5, 0.5]),
    ("extreme", [600_000, 400_000], [0.5, 0.5]),
    ("weights_unnormalised_equiv", [7000, 3100], [0.7, 0.3]),
]

# CUPED: (label, n_c, n_t, slope of y on x, treatment shift, covariate shift in treatment).
# Per-user values come from integer formulas (see cuped_arrays), not an RNG.
CUPED_CASES = [
    ("strong", 400, 400, 1.5, 0.3, 0.0),
    ("weak", 300, 350, 0.2, 0.5, 0.0),
    ("negative_slope", 250, 250, -0.8, -0.2, 0.0),
    ("imbalanced_covariate", 500, 450, 1.0, 0.25, 0.4),
    ("small", 12, 15, 0.9, 1.0, 0.0),
    ("unequal", 1200, 300, 0.6, 0.1, 0.1),
]

SEQ_TUNING = [5000.0, 1000.0, 50000.0]
ALPHAS = [0.05, 0.1, 0.01]


def mean_sums(n: int, mean: float, sd: float) -> dict:
    s = n * mean
    ss = (n - 1) * sd * sd + n * mean * mean
    return {"n": n, "sum": s, "sum_sq": ss}


def cuped_arrays(n: int, offset: int, slope: float, shift: float, x_shift: float
                 ) -> tuple[list[float], list[float]]:
    """Deterministic, irregular-looking covariate x and outcome y for one arm."""
    xs, ys = [], []
    for i in range(n):
        x = ((i * 37 + offset * 11) % 101) / 10.0 + x_shift
        noise = (((i * 53 + offset * 7) % 89) - 44) / 20.0
        xs.append(round(x, 6))
        ys.append(round(2.0 + slope * x + noise + shift, 6))
    return xs, ys


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _result(res) -> dict:
    return {
        "estimate": _clean(float(res.expected)),
        "ci": [_clean(float(res.ci[0])), _clean(float(res.ci[1]))],
        "se": _clean(float(res.uplift.stddev)),
        "p_value": _clean(float(res.p_value)),
        "error": res.error_message,
    }


def make_gbstats() -> dict:
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        SampleMeanStatistic,
    )
    from gbstats.utils import check_srm

    def both(stat_a, stat_b, alpha):
        out = {}
        for kind in ("absolute", "relative"):
            t = TwoSidedTTest(stat_a, stat_b, FrequentistConfig(alpha=alpha, difference_type=kind))
            out[kind] = _result(t.compute_result())
            out[kind]["df"] = _clean(float(t.dof))
        return out

    mean_cases = []
    for i, (label, nc, mc, sc, nt, mt, st) in enumerate(MEAN_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]
        c, t = mean_sums(nc, mc, sc), mean_sums(nt, mt, st)
        a = SampleMeanStatistic(n=c["n"], sum=c["sum"], sum_squares=c["sum_sq"])
        b = SampleMeanStatistic(n=t["n"], sum=t["sum"], sum_squares=t["sum_sq"])
        case = {"label": label, "alpha": alpha, "control": c, "treatment": t}
        case.update(both(a, b, alpha))
        tuning = SEQ_TUNING[i % len(SEQ_TUNING)]
        case["sequential_tuning"] = tuning
        for kind in ("absolute", "relative"):
            cfg = SequentialConfig(alpha=alpha, difference_type=kind,
                                   sequential_tuning_parameter=tuning)
            case["sequential_" + kind] = _result(SequentialTwoSidedTTest(a, b, cfg).compute_result())
        mean_cases.append(case)

    prop_cases = []
    for i, (label, xc, nc, xt, nt) in enumerate(PROPORTION_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]
        a = ProportionStatistic(n=nc, sum=xc)
        b = ProportionStatistic(n=nt, sum=xt)
        case = {"label": label, "alpha": alpha,
                "control": {"conversions": xc, "n": nc},
                "treatment": {"conversions": xt, "n": nt}}
        case.update(both(a, b, alpha))
        prop_cases.append(case)

    ratio_cases = []
    for i, (label, ca, ta) in enumerate(RATIO_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]

        def ratio(arm):
            n, sx, sxx, sy, syy, sxy = arm
            return RatioStatistic(
                n=n,
                m_statistic=SampleMeanStatistic(n=n, sum=sx, sum_squares=sxx),
                d_statistic=SampleMeanStatistic(n=n, sum=sy, sum_squares=syy),
                m_d_sum_of_products=sxy,
            )

        keys = ("n", "sum_x", "sum_x_sq", "sum_y", "sum_y_sq", "sum_xy")
        case = {"label": label, "alpha": alpha,
                "control": dict(zip(keys, ca, strict=True)),
                "treatment": dict(zip(keys, ta, strict=True))}
        case.update(both(ratio(ca), ratio(ta), alpha))
        ratio_cases.append(case)

    srm_cases = []
    for label, counts, weights in SRM_CASES:
        srm_cases.append({"label": label, "counts": counts, "weights": weights,
                          "p_value": float(check_srm(counts, weights))})

    from gbstats.models.statistics import RegressionAdjustedStatistic

    def ra(xs, ys):
        return RegressionAdjustedStatistic(
            n=len(xs),
            post_statistic=SampleMeanStatistic(n=len(ys), sum=sum(ys),
                                               sum_squares=sum(v * v for v in ys)),
            pre_statistic=SampleMeanStatistic(n=len(xs), sum=sum(xs),
                                              sum_squares=sum(v * v for v in xs)),
            post_pre_sum_of_products=sum(a * b for a, b in zip(xs, ys, strict=True)),
            theta=0,
        )

    cuped_cases = []
    for i, (label, nc, nt, slope, shift, x_shift) in enumerate(CUPED_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]
        xc, yc = cuped_arrays(nc, 2 * i, slope, 0.0, 0.0)
        xt, yt = cuped_arrays(nt, 2 * i + 1, slope, shift, x_shift)
        case = {"label": label, "alpha": alpha, "control_x": xc, "control_y": yc,
                "treatment_x": xt, "treatment_y": yt}
        for kind in ("absolute", "relative"):
            t = TwoSidedTTest(ra(xc, yc), ra(xt, yt),
                              FrequentistConfig(alpha=alpha, difference_type=kind))
            case[kind] = _result(t.compute_result())
            case[kind]["df"] = _clean(float(t.dof))
            case["theta"] = float(t.stat_a.theta)
        cuped_cases.append(case)

    return {
        "library": "gbstats",
        "version": importlib.metadata.version("gbstats"),
        "numpy": importlib.metadata.version("numpy"),
        "scipy": importlib.metadata.version("scipy"),
        "notes": "absolute/relative = TwoSidedTTest(difference_type=...); sequential_* = "
                 "SequentialTwoSidedTTest(sequential_tuning_parameter=sequential_tuning); "
                 "se = uplift.stddev; srm p_value = gbstats.utils.check_srm; cuped = "
                 "TwoSidedTTest on RegressionAdjustedStatistic (theta from compute_theta)",
        "mean": mean_cases,
        "proportion": prop_cases,
        "ratio": ratio_cases,
        "srm": srm_cases,
        "cuped": cuped_cases,
    }


# ----- Bayesian read (EffectBayesianABTest) -----------------------------------------------------
# Priors on the relative effect, as GrowthBook hands them to gbstats (prior_type="relative"):
# (label, mean, variance, proper). "flat" is GrowthBook's default (proper off).
BAYES_PRIORS = [
    ("flat", 0.0, 0.09, False),
    ("proper_sd03", 0.0, 0.09, True),
    ("proper_tight_pos", 0.05, 0.0004, True),
]

# Degenerate inputs: (label, kind, control, treatment); mean arms are (n, sum, sum_sq),
# proportion arms (n, conversions), ratio arms (n, sum_x, sum_x_sq, sum_y, sum_y_sq, sum_xy).
BAYES_DEGENERATE = [
    ("mean_zero_variance_both", "mean", (10, 50.0, 250.0), (10, 60.0, 360.0)),
    ("mean_zero_variance_control", "mean", (10, 50.0, 250.0), (10, 60.0, 400.0)),
    ("mean_n1_each", "mean", (1, 3.0, 9.0), (1, 4.0, 16.0)),
    ("mean_n2_each", "mean", (2, 3.0, 5.0), (2, 5.0, 13.0)),
    ("mean_empty_treatment", "mean", (10, 50.0, 300.0), (0, 0.0, 0.0)),
    ("mean_empty_both", "mean", (0, 0.0, 0.0), (0, 0.0, 0.0)),
    ("mean_control_mean_zero", "mean", (10, 0.0, 10.0), (10, 2.0, 12.0)),
    ("mean_negative_control", "mean", (50, -40.0, 90.0), (50, -30.0, 80.0)),
    ("prop_zero_conversions_control", "proportion", (100, 0), (100, 3)),
    ("prop_zero_conversions_treatment", "proportion", (100, 4), (100, 0)),
    ("prop_zero_conversions_both", "proportion", (100, 0), (100, 0)),
    ("prop_all_converted_treatment", "proportion", (100, 40), (100, 100)),
    ("prop_tiny_n1", "proportion", (1, 0), (1, 1)),
    ("prop_tiny_n3", "proportion", (3, 1), (3, 2)),
    ("prop_empty_control", "proportion", (0, 0), (50, 5)),
    ("ratio_zero_denominator_control", "ratio", (20, 10.0, 12.0, 0.0, 0.0, 0.0),
     (20, 12.0, 15.0, 18.0, 20.0, 14.0)),
    ("ratio_n1", "ratio", (1, 2.0, 4.0, 1.0, 1.0, 2.0), (1, 3.0, 9.0, 1.0, 1.0, 3.0)),
]


def _bayes_result(make) -> dict:
    try:
        res = make().compute_result()
    except Exception as exc:  # noqa: BLE001 - the reference's failure is the recorded answer
        return {"raises": type(exc).__name__}
    return {
        "chance_to_win": _clean(float(res.chance_to_win)),
        "expected": _clean(float(res.expected)),
        "ci": [_clean(float(res.ci[0])), _clean(float(res.ci[1]))],
        "stddev": _clean(float(res.uplift.stddev)),
        "risk": [_clean(float(res.risk[0])), _clean(float(res.risk[1]))],
        "risk_type": res.risk_type,
        "error": res.error_message,
    }


def make_gbstats_bayes() -> dict:
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        SampleMeanStatistic,
    )

    def mean_stat(arm):
        n, s, ss = arm
        return SampleMeanStatistic(n=n, sum=s, sum_squares=ss)

    def prop_stat(arm):
        n, x = arm
        return ProportionStatistic(n=n, sum=x)

    def ratio_stat(arm):
        n, sx, sxx, sy, syy, sxy = arm
        return RatioStatistic(
            n=n, m_statistic=SampleMeanStatistic(n=n, sum=sx, sum_squares=sxx),
            d_statistic=SampleMeanStatistic(n=n, sum=sy, sum_squares=syy),
            m_d_sum_of_products=sxy)

    def reads(stat_a, stat_b, alpha, inverse, priors=BAYES_PRIORS):
        out = {}
        for plabel, pmean, pvar, proper in priors:
            for kind in ("relative", "absolute"):
                def make(kind=kind, pmean=pmean, pvar=pvar, proper=proper):
                    cfg = EffectBayesianConfig(
                        alpha=alpha, inverse=inverse, difference_type=kind,
                        prior_type="relative",
                        prior_effect=GaussianPrior(mean=pmean, variance=pvar, proper=proper))
                    return EffectBayesianABTest(stat_a(), stat_b(), cfg)
                out[f"{plabel}_{kind}"] = _bayes_result(make)
        return out

    priors = [{"label": p[0], "mean": p[1], "variance": p[2], "proper": p[3]}
              for p in BAYES_PRIORS]
    mean_cases = []
    for i, (label, nc, mc, sc, nt, mt, st) in enumerate(MEAN_CASES):
        alpha, inverse = ALPHAS[i % len(ALPHAS)], i % 4 == 3
        c, t = mean_sums(nc, mc, sc), mean_sums(nt, mt, st)
        case = {"label": label, "alpha": alpha, "inverse": inverse, "control": c, "treatment": t}
        case["reads"] = reads(lambda c=c: mean_stat((c["n"], c["sum"], c["sum_sq"])),
                              lambda t=t: mean_stat((t["n"], t["sum"], t["sum_sq"])),
                              alpha, inverse)
        mean_cases.append(case)

    prop_cases = []
    for i, (label, xc, nc, xt, nt) in enumerate(PROPORTION_CASES):
        alpha, inverse = ALPHAS[i % len(ALPHAS)], i % 4 == 3
        case = {"label": label, "alpha": alpha, "inverse": inverse,
                "control": {"conversions": xc, "n": nc},
                "treatment": {"conversions": xt, "n": nt}}
        case["reads"] = reads(lambda c=(nc, xc): prop_stat(c), lambda t=(nt, xt): prop_stat(t),
                              alpha, inverse)
        prop_cases.append(case)

    keys = ("n", "sum_x", "sum_x_sq", "sum_y", "sum_y_sq", "sum_xy")
    ratio_cases = []
    for i, (label, ca, ta) in enumerate(RATIO_CASES):
        alpha, inverse = ALPHAS[i % len(ALPHAS)], i % 4 == 3
        case = {"label": label, "alpha": alpha, "inverse": inverse,
                "control": dict(zip(keys, ca, strict=True)),
                "treatment": dict(zip(keys, ta, strict=True))}
        case["reads"] = reads(lambda ca=ca: ratio_stat(ca), lambda ta=ta: ratio_stat(ta),
                              alpha, inverse)
        ratio_cases.append(case)

    degenerate = []
    makers = {"mean": mean_stat, "proportion": prop_stat, "ratio": ratio_stat}
    fields = {"mean": ("n", "sum", "sum_sq"), "proportion": ("n", "conversions"),
              "ratio": keys}
    for label, kind, ca, ta in BAYES_DEGENERATE:
        case = {"label": label, "kind": kind, "alpha": 0.05, "inverse": False,
                "control": dict(zip(fields[kind], ca, strict=True)),
                "treatment": dict(zip(fields[kind], ta, strict=True))}
        case["reads"] = reads(lambda ca=ca, kind=kind: makers[kind](ca),
                              lambda ta=ta, kind=kind: makers[kind](ta), 0.05, False)
        degenerate.append(case)

    return {
        "library": "gbstats",
        "version": importlib.metadata.version("gbstats"),
        "numpy": importlib.metadata.version("numpy"),
        "scipy": importlib.metadata.version("scipy"),
        "pandas": importlib.metadata.version("pandas"),
        "python": sys.version.split()[0],
        "notes": "reads[<prior>_<relative|absolute>] = EffectBayesianABTest(EffectBayesianConfig("
                 "alpha, inverse, difference_type, prior_type='relative', prior_effect="
                 "GaussianPrior(mean, variance, proper))).compute_result(); stddev = "
                 "uplift.stddev; risk = [control, treatment]; 'raises' names the exception "
                 "gbstats raised instead of returning",
        "priors": priors,
        "mean": mean_cases,
        "proportion": prop_cases,
        "ratio": ratio_cases,
        "degenerate": degenerate,
    }


def make_spotify() -> dict:
    import pandas as pd
    from spotify_confidence import StudentsTTest, ZTest

    def diff(cls, c, t, alpha):
        df = pd.DataFrame({
            "group": ["control", "treatment"],
            "s": [float(c["sum"]), float(t["sum"])],
            "ss": [float(c["sum_sq"]), float(t["sum_sq"])],
            "n": [int(c["n"]), int(t["n"])],
        })
        exp = cls(df, "s", "ss", "n", "group", interval_size=1 - alpha)
        row = exp.difference("control", "treatment").iloc[0]
        return {"estimate": float(row["difference"]),
                "ci": [float(row["ci_lower"]), float(row["ci_upper"])],
                "p_value": float(row["p-value"])}

    mean_cases = []
    for i, (label, nc, mc, sc, nt, mt, st) in enumerate(MEAN_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]
        c, t = mean_sums(nc, mc, sc), mean_sums(nt, mt, st)
        mean_cases.append({"label": label, "alpha": alpha, "control": c, "treatment": t,
                           "ttest_absolute": diff(StudentsTTest, c, t, alpha),
                           "ztest_absolute": diff(ZTest, c, t, alpha)})

    prop_cases = []
    for i, (label, xc, nc, xt, nt) in enumerate(PROPORTION_CASES):
        alpha = ALPHAS[i % len(ALPHAS)]
        c = {"n": nc, "sum": xc, "sum_sq": xc}
        t = {"n": nt, "sum": xt, "sum_sq": xt}
        prop_cases.append({"label": label, "alpha": alpha,
                           "control": {"conversions": xc, "n": nc},
                           "treatment": {"conversions": xt, "n": nt},
                           "ztest_absolute": diff(ZTest, c, t, alpha)})

    srm_cases = []
    for label, counts, weights in SRM_CASES:
        groups = [f"g{i}" for i in range(len(counts))]
        total_w = sum(weights)
        df = pd.DataFrame({"group": groups, "s": [0.0] * len(counts),
                           "ss": [0.0] * len(counts), "n": counts})
        exp = ZTest(df, "s", "ss", "n", "group")
        p, _ = exp.sample_ratio_test({g: w / total_w for g, w in zip(groups, weights, strict=True)})
        srm_cases.append({"label": label, "counts": counts, "weights": weights,
                          "p_value": float(p)})

    return {
        "library": "spotify-confidence",
        "version": importlib.metadata.version("spotify-confidence"),
        "notes": "ttest_absolute = StudentsTTest.difference (Welch); ztest_absolute = "
                 "ZTest.difference; srm = Experiment.sample_ratio_test. Relative intervals "
                 "are deliberately not recorded (not the delta method).",
        "mean": mean_cases,
        "proportion": prop_cases,
        "srm": srm_cases,
    }


def _write(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", choices=["gbstats", "gbstats_bayes", "spotify", "all"], default="all")
    args = parser.parse_args(argv)
    if args.which in ("gbstats", "all"):
        _write("gbstats.json", make_gbstats())
    if args.which in ("gbstats_bayes", "all"):
        _write("gbstats_bayes.json", make_gbstats_bayes())
    if args.which in ("spotify", "all"):
        _write("spotify_confidence.json", make_spotify())
    return 0


if __name__ == "__main__":
    sys.exit(main())
