"""Wilson intervals, exact McNemar and Holm against published / hand-computed values."""
import pytest

from liquid_nav.evaluate.stats import holm_adjusted, mcnemar_exact, wilson_interval


@pytest.mark.parametrize("successes, trials, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (score interval without correction)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and low == pytest.approx(1 - wilson_interval(0, 20)[1])
    for trials in range(1, 60):  # the rate itself is always inside, exactly (1.0 - 1e-16 would be outside)
        assert wilson_interval(trials, trials)[1] == 1.0 and wilson_interval(0, trials)[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@pytest.mark.parametrize("only_a, only_b, p_value", [
    (1, 9, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
    (0, 5, 2 / 32),
    (9, 1, 22 / 1024),
    (3, 3, 1.0),
    (0, 0, 1.0),
    (2, 12, 2 * (1 + 14 + 91) / 2**14),
])
def test_exact_mcnemar(only_a, only_b, p_value):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p_value, rel=1e-12)


def test_holm_adjustment():
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([]) == []
