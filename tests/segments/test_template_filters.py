"""The number filters the pages use: p-values never read 0.0000."""

from segments.templatetags.humanize_extras import pvalue, signed_percent


def test_pvalue_reads_below_a_floor_never_zero() -> None:
    assert pvalue(0.0) == "< 0.0001"
    assert pvalue(3e-9) == "< 0.0001"
    assert pvalue(0.0001) == "0.0001"
    assert pvalue(0.04567) == "0.0457"
    assert pvalue(None) == ""
    assert pvalue(float("nan")) == "n/a"


def test_signed_percent() -> None:
    assert signed_percent(0.0523) == "+5.2%"
    assert signed_percent(-0.2) == "-20.0%"
    assert signed_percent(0.12345, 2) == "+12.35%"
    assert signed_percent("x") == ""
