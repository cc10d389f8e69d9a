"""The simulated scale, manual entry and the scale factory."""

from __future__ import annotations

import pytest

from pos_terminal.scales import (
    BelowMinimum,
    ManualScale,
    OverCapacity,
    ScaleError,
    ScaleFault,
    SimulatedScale,
    UnderZero,
    Unstable,
    open_scale,
    parse_weight_text,
    take_weight,
)


def test_zero_tare_and_net_weight():
    scale = SimulatedScale()
    scale.place(8)
    scale.zero()
    scale.place(8 + 20)
    scale.tare()
    scale.place(8 + 20 + 1501)
    reading = scale.read()
    assert (reading.weight_g, reading.net) == (1502, True)  # rounded to the 2 g division
    assert take_weight(scale) == 1502
    scale.clear_tare()
    assert scale.read().weight_g == 1522


def test_refusals():
    scale = SimulatedScale(capacity_g=15_000)
    scale.place(700, settle=False)
    with pytest.raises(Unstable):
        take_weight(scale)
    with pytest.raises(ScaleFault, match="stable"):
        scale.tare()
    scale.settle()
    assert take_weight(scale) == 700
    scale.place(20)
    with pytest.raises(BelowMinimum):
        take_weight(scale)
    assert take_weight(scale, minimum_g=10) == 20
    scale.place(16_000)
    with pytest.raises(OverCapacity):
        take_weight(scale)
    scale.place(5000)
    with pytest.raises(ScaleFault, match="empty the platter"):
        scale.zero()
    scale.place(0)
    scale.zero()
    scale.place(-10)
    with pytest.raises(UnderZero):
        take_weight(scale)
    with pytest.raises(ScaleFault, match="nothing on the platter"):
        scale.tare()


@pytest.mark.parametrize("text, grams", [
    ("850", 850), ("850g", 850), ("850 G", 850), ("1.25kg", 1250), ("1.25", 1250),
    ("2jin", 1000), ("1.5斤", 750), ("0.001kg", 1), ("3公斤", 3000),
])
def test_manual_weights(text, grams):
    assert parse_weight_text(text) == grams


@pytest.mark.parametrize("text", ["", "abc", "-5", "1.2.3", "0.0005kg", "1,5kg", "5lb"])
def test_manual_weight_refusals(text):
    with pytest.raises(ValueError):
        parse_weight_text(text)


def test_manual_scale():
    scale = ManualScale()
    with pytest.raises(ScaleError, match="type the weight"):
        scale.read()
    scale.enter("1.2kg")
    assert take_weight(scale) == 1200
    with pytest.raises(ScaleError, match="net weight"):
        scale.tare()
    scale.zero()
    with pytest.raises(ScaleError):
        scale.read()


def test_open_scale():
    assert isinstance(open_scale("manual"), ManualScale)
    assert isinstance(open_scale("simulated"), SimulatedScale)
    with pytest.raises(ValueError, match="unknown scale"):
        open_scale("mettler")
    with pytest.raises(ValueError, match="unknown scale"):
        open_scale("toledo:/dev/x")
