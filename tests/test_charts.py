"""Charts: every kind renders its table at the asked size, element boxes follow the values, value axes take in
negatives, unprinted values sit on gridlines, same seed → same pixels."""

from __future__ import annotations

import numpy as np
import pytest

from mirdata.generators.charts import CHART_KINDS, ChartSpec, chart_style, render_chart

CATS = ["Alpha", "Bravo", "Comet", "Delta"]
SIZE = (320, 240)


def spec(kind: str) -> ChartSpec:
    if kind == "stacked_bar":
        return ChartSpec(kind, "Units", CATS, {"online": [20, 40, 10, 30], "store": [30, 20, 50, 40]}, "product",
                         "units", "{:.0f}")
    if kind == "grouped_bar":
        return ChartSpec(kind, "Units", CATS, {"2023": [120, 340, 95, 210], "2024": [150, 300, 130, 260]}, "product",
                         "units", "{:.0f}")
    if kind == "scatter":
        return ChartSpec(kind, "Price vs margin", CATS, {"x": [12.5, 4.25, 20.0, 8.75], "y": [20, 35, 10, 25]},
                         "price", "margin", "{:.0f}%", "${:.2f}")
    if kind == "pie":
        return ChartSpec(kind, "Share", CATS, {"share": [40, 25, 20, 15]}, value_format="{:.0f}%")
    return ChartSpec(kind, "Units", CATS, {"units": [120, 340, 95, 210]}, "product", "units", "{:.0f}")


@pytest.mark.parametrize("kind", CHART_KINDS)
def test_every_kind_renders_all_elements_inside_the_image(kind: str) -> None:
    chart = render_chart(spec(kind), SIZE, rng=np.random.default_rng(1))
    assert chart.image.size == SIZE and chart.image.mode == "RGB"
    expected = len(CATS) * (2 if kind in ("grouped_bar", "stacked_bar") else 1)
    assert len(chart.elements) == expected
    for e in chart.elements:
        x0, y0, x1, y1 = e.box
        assert 0 <= x0 < x1 <= SIZE[0] and 0 <= y0 < y1 <= SIZE[1]
        assert all(type(v) is float for v in e.box)
    # The chart is not blank: many distinct colours were drawn.
    assert len(np.unique(np.asarray(chart.image).reshape(-1, 3), axis=0)) > 20


@pytest.mark.parametrize("kind", ["bar", "grouped_bar"])
def test_bar_heights_are_proportional_to_the_table(kind: str) -> None:
    chart = render_chart(spec(kind), SIZE, rng=np.random.default_rng(2))
    heights = np.array([e.box[3] - e.box[1] for e in chart.elements])
    values = np.array([e.value for e in chart.elements], dtype=float)
    ratio = heights / values
    assert np.allclose(ratio, ratio.mean(), rtol=0.03)
    bottoms = {round(e.box[3]) for e in chart.elements}
    assert max(bottoms) - min(bottoms) <= 1  # every bar starts at the same baseline


def pixel_per_unit(chart) -> float:
    """Pixels per value unit on the value axis, from the axes box and the value range."""
    lo, hi = chart.value_range
    return (chart.axes_box[3] - chart.axes_box[1]) / (hi - lo)


def test_negative_bars_hang_below_a_zero_line_inside_the_axes() -> None:
    values = [12, -3, 8, -5]
    chart = render_chart(ChartSpec("bar", "Profit", CATS, {"p": values}, "area", "k USD", "{:+.0f}"), SIZE,
                         rng=np.random.default_rng(5))
    lo, hi = chart.value_range
    assert lo < min(values) and max(values) < hi  # nothing cut off
    zero_y = chart.axes_box[1] + hi * pixel_per_unit(chart)  # where 0 sits on the image
    for e, v in zip(chart.elements, values):
        top, bottom = e.box[1], e.box[3]
        assert chart.axes_box[1] <= top and bottom <= chart.axes_box[3]
        edge = bottom if v < 0 else top  # the bar's far end, measured against zero
        assert abs(abs(edge - zero_y) - abs(v) * pixel_per_unit(chart)) < 1.5
        assert abs((top if v < 0 else bottom) - zero_y) < 1.5  # and its base is the zero line


def test_unprinted_values_sit_on_labelled_gridlines() -> None:
    with pytest.raises(ValueError, match="multiples of the tick"):
        ChartSpec("bar", "Units", CATS, {"u": [100, 40, 250, 75]}, show_values=False, tick=25)
    s = ChartSpec("bar", "Units", CATS, {"u": [100, -50, 250, 75]}, "product", "units", show_values=False, tick=25)
    chart = render_chart(s, SIZE, rng=np.random.default_rng(6))
    image = np.asarray(chart.image).astype(int)
    face = np.array([int(chart.style["face"][i:i + 2], 16) for i in (1, 3, 5)])
    step_px = 25 * pixel_per_unit(chart)
    for e, right in zip(chart.elements, chart.elements[1:]):
        x = int((e.box[2] + right.box[0]) / 2)  # in the gap between two bars
        far = e.box[3] if e.value < 0 else e.box[1]  # the bar's end, away from zero
        on_line = max(np.abs(image[int(round(far)) + d, x] - face).max() for d in (-1, 0, 1))
        between = np.abs(image[int(round(far + step_px / 2)), x] - face).max()
        assert on_line > 15 and between < 8  # a gridline runs level with the bar's end, none halfway
    assert chart.value_range[0] <= -50 and chart.value_range[1] >= 250


def test_stacked_segments_pile_up() -> None:
    chart = render_chart(spec("stacked_bar"), SIZE, rng=np.random.default_rng(8))
    online = [e for e in chart.elements if e.series == "online"]
    store = [e for e in chart.elements if e.series == "store"]
    for low, high in zip(online, store):
        assert abs(low.box[1] - high.box[3]) < 1.5  # each store segment starts where the online one ends
        scale = pixel_per_unit(chart)
        assert abs((high.box[3] - high.box[1]) - high.value * scale) < 1.5


def test_line_points_follow_the_values() -> None:
    chart = render_chart(spec("line"), SIZE, rng=np.random.default_rng(3))
    centres_y = [(e.box[1] + e.box[3]) / 2 for e in chart.elements]
    values = [e.value for e in chart.elements]
    # Higher value → higher on the image (smaller y), in the same order.
    assert np.argsort(centres_y).tolist() == np.argsort(values)[::-1].tolist()
    xs = [(e.box[0] + e.box[2]) / 2 for e in chart.elements]
    assert xs == sorted(xs)


def test_pie_wedges_are_sized_by_share() -> None:
    chart = render_chart(spec("pie"), SIZE, rng=np.random.default_rng(4))
    areas = {e.category: (e.box[2] - e.box[0]) * (e.box[3] - e.box[1]) for e in chart.elements}
    assert max(areas, key=areas.get) == "Alpha"  # the 40% wedge has the largest box


def test_same_seed_same_pixels_and_styles_differ_across_seeds() -> None:
    a = render_chart(spec("bar"), SIZE, rng=np.random.default_rng(7))
    b = render_chart(spec("bar"), SIZE, rng=np.random.default_rng(7))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert [e.box for e in a.elements] == [e.box for e in b.elements]
    styles = {str(chart_style(np.random.default_rng(s))) for s in range(8)}
    assert len(styles) > 1


def test_bad_tables_are_rejected() -> None:
    with pytest.raises(ValueError, match="values for 4 categories"):
        ChartSpec("bar", "t", CATS, {"units": [1, 2, 3]})
    with pytest.raises(ValueError, match="exactly one series"):
        ChartSpec("pie", "t", CATS, {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match="positive"):
        ChartSpec("pie", "t", CATS, {"a": [1, 0, 3, 4]})
    with pytest.raises(ValueError, match="unknown chart kind"):
        ChartSpec("radar", "t", CATS, {"a": [1, 2, 3, 4]})


def test_spec_round_trips_through_json() -> None:
    s = spec("scatter")
    assert ChartSpec(**s.to_json()) == s
