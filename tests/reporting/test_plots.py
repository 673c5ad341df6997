"""Charts take column names and category values as users wrote them."""

import numpy as np

from assurance.reporting import plots

MATHTEXT = "rate $\\frac{x$"  # matplotlib would parse a `$` pair as mathtext and fail on this one


def test_user_text_with_dollar_signs_is_drawn_as_text():
    pngs = [
        plots.category_pairs(
            {"reference": {MATHTEXT: 5, "b": 3}, "current": {MATHTEXT: 1, "c": 7}}, MATHTEXT, MATHTEXT
        ),
        plots.histograms({"reference": np.arange(10.0), "current": np.arange(10.0) + 1}, MATHTEXT, MATHTEXT),
        plots.threshold_bars([MATHTEXT, "b"], [0.2, 0.05], 0.1, MATHTEXT),
        plots.trend({MATHTEXT: ([1, 2], [0.5, 0.6])}, MATHTEXT),
    ]
    assert all(p.startswith(b"\x89PNG") for p in pngs)


def test_category_shares_keep_every_sample_whole_when_categories_are_cut():
    many = {f"v{i:02d}": i + 1 for i in range(30)}
    labels, shares = plots.category_shares({"reference": many, "current": {"v00": 5, "new": 5}}, top=5)
    assert labels[:2] == ["new", "v00"] and labels[-1] == "(other)" and len(labels) == 6
    assert [round(sum(v), 9) for v in shares.values()] == [1.0, 1.0]
    assert shares["current"][:2] == [0.5, 0.5] and shares["reference"][0] == 0.0
