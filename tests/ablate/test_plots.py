"""Ablation bar plots: a collapse rate of 0 everywhere still reads as 0 on a [0, 1] axis."""

from rlstab_jax.ablate.plots import bars_figure, plot_bars


def test_all_zero_rates_keep_the_unit_axis_and_label_each_bar(tmp_path):
    rates = {"a": {"value": 0.0, "ci": None}, "b": {"value": 0.0, "ci": None},
             "c": {"value": 0.3, "ci": None}}
    fig = bars_figure(rates, "collapse rate", "share of seeds collapsed", ylim=(0.0, 1.05))
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.05)
    assert [t.get_text() for t in ax.texts] == ["0", "0", "0.3"]
    plot_bars(rates, tmp_path / "rate.png", "collapse rate", "share", ylim=(0.0, 1.05))
    assert (tmp_path / "rate.png").stat().st_size > 0


def test_without_ylim_the_axis_follows_the_values():
    fig = bars_figure({"a": {"value": 400.0, "ci": [380.0, 450.0]}}, "IQM", "IQM")
    assert fig.axes[0].get_ylim()[1] >= 450.0
