"""The learning's "what happened" text (shown on the learnings page and in the council brief)
prints p-values as the pages do: "p < 0.0001" when tiny, never 0.0000 or 1.2e-07."""

from __future__ import annotations

from experiments import services as xs

ROW = {"metric": "bought", "scope_label": "All assigned", "control": "control",
       "arm": "treatment", "control_mean": 0.1, "treatment_mean": 0.13, "absolute": 0.03,
       "absolute_ci": [0.02, 0.04], "relative": 0.3, "relative_ci": [0.2, 0.4]}


def test_a_tiny_adjusted_p_reads_below_one_in_ten_thousand():
    text = xs._describe({**ROW, "p_adjusted": 1.2e-07})
    assert text.endswith(", adjusted p < 0.0001")
    assert "e-07" not in text and "0.0000" not in text


def test_an_ordinary_adjusted_p_has_four_decimals():
    assert xs._describe({**ROW, "p_adjusted": 0.04321}).endswith(", adjusted p = 0.0432")


def test_difference_in_differences_p():
    row = {"kind": "did", "estimate": 0.05, "ci": [0.01, 0.09], "p_value": 3e-9}
    assert xs._describe(row) == ("difference-in-differences +0.05 (95% CI +0.01 to +0.09), "
                                 "p < 0.0001")
    assert xs._describe({**row, "p_value": 0.2}).endswith("p = 0.2000")
