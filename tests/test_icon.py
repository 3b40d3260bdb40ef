"""The tray icon reads without colour: each level has its own shape, checked on rendered pixels
as seen with deuteranopia, protanopia and in grey (Machado 2009, tests/cvd.py), at tray sizes."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from tests import cvd  # noqa: E402
from trayapp.gui import icon as tray_icon  # noqa: E402
from trayapp.model import Level  # noqa: E402

SIZES = (16, 22, 24, 32, 44, 48)  # the tray sizes, and 16/22/24 at a 2x device pixel ratio
PANELS = {"light": (0xF1 / 255, 0xF3 / 255, 0xF4 / 255), "dark": (0x20 / 255, 0x21 / 255, 0x24 / 255)}
VISION = ("normal", "deuteranopia", "protanopia")
# What the eye separates from the panel without hue: a luminance step of 0.06 (out of 1) or more.
FIGURE = 0.06
# Two levels are told apart by shape when at least this share of the pixels either one draws
# (the union of their figures) is drawn by one only. Same-shape icons in two colours score ~0.
DISTINCT = 0.2


def seen(level: Level, size: int, panel: str, vision: str, **kw) -> np.ndarray:
    """The grey image a person with ``vision`` sees: luminance of the icon on the panel."""
    rgb = cvd.composite(cvd.image_rgba(tray_icon.render(level, size=size, **kw)), PANELS[panel])
    if vision != "normal":
        rgb = cvd.simulate(rgb, vision)
    return cvd.luminance(rgb)


def figure(grey: np.ndarray, panel: str) -> np.ndarray:
    """What stands out from the panel, without hue: +1 where the icon is lighter than the
    panel by at least ``FIGURE`` in luminance, -1 where darker, 0 where it melts in."""
    panel_grey = cvd.luminance(np.asarray(PANELS[panel]))
    return np.where(grey > panel_grey + FIGURE, 1, np.where(grey < panel_grey - FIGURE, -1, 0))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the pixels either icon draws (its figure) that the two draw differently."""
    drawn = (a != 0) | (b != 0)
    return float(((a != b) & drawn).sum() / drawn.sum()) if drawn.any() else 0.0


def test_the_simulation_is_why_shapes_are_needed() -> None:
    """Sanity of the model: with deuteranopia the contract red and green differ far less in
    colour than with normal vision (so colour alone cannot carry the level)."""
    red = np.array(tray_icon.COLORS[Level.RED].getRgbF()[:3])
    green = np.array(tray_icon.COLORS[Level.OK].getRgbF()[:3])

    def chroma(rgb: np.ndarray) -> np.ndarray:  # colour without brightness
        return rgb / rgb.sum()

    normal = np.abs(chroma(red) - chroma(green)).sum()
    for kind in ("deuteranopia", "protanopia"):
        assert np.abs(chroma(cvd.simulate(red, kind)) - chroma(cvd.simulate(green, kind))).sum() < normal / 3
    assert np.allclose(cvd.simulate(np.array([0.5, 0.5, 0.5]), "deuteranopia"), 0.5, atol=0.01)  # greys stay grey


@pytest.mark.parametrize("vision", VISION)
@pytest.mark.parametrize("panel", list(PANELS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("load", [None, 5])
def test_levels_differ_by_shape_without_colour(qapp, size: int, panel: str, vision: str, load) -> None:
    shapes = {level: figure(seen(level, size, panel, vision, load=load), panel) for level in Level}
    for a, b in itertools.combinations(Level, 2):
        d = distance(shapes[a], shapes[b])
        assert d >= DISTINCT, f"{a.value} and {b.value} look alike at {size} px on a {panel} panel ({vision}): {d:.2f}"
    for level, mask in shapes.items():  # and each is visible at all
        assert (mask != 0).sum() >= size * size * 0.15, (level, size, panel, vision, int(mask.sum()))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("level", list(Level))
def test_each_level_keeps_its_contract_colour(qapp, level: Level, size: int) -> None:
    rgba = np.round(cvd.image_rgba(tray_icon.render(level, load=4, size=size)) * 255).astype(int)
    shape = rgba[: size - max(3, round(size / 8)) - 1] if size >= tray_icon.BAR_FROM else rgba  # above the load bar
    opaque = shape[shape[..., 3] == 255][:, :3]
    (dominant, count), = Counter(map(tuple, opaque)).most_common(1)
    expected = tray_icon.COLORS[level].getRgb()[:3]
    assert max(abs(a - b) for a, b in zip(dominant, expected)) <= 2, (level, size, dominant, count)
    assert count >= 8  # not a stray pixel: the shape is drawn in it
    assert rgba[0, 0, 3] == 0 and rgba[0, -1, 3] == 0 or level is Level.ORANGE  # transparent corners


@pytest.mark.parametrize(("level", "other"), [(Level.RED, Level.ORANGE), (Level.ORANGE, Level.RED)])
def test_no_pixel_of_one_alert_colour_in_the_other(qapp, level: Level, other: Level) -> None:
    """What the real-tray test checks on a screenshot: the red icon has no orange pixel, and back."""
    expected = np.array(tray_icon.COLORS[other].getRgb()[:3]) / 255
    for size in SIZES:
        for panel in PANELS:
            for kw in ({}, {"load": 8}, {"paused": True, "snoozed": True}):
                rgb = cvd.composite(cvd.image_rgba(tray_icon.render(level, size=size, **kw)), PANELS[panel])
                assert not (np.abs(rgb - expected).max(axis=-1) <= 30 / 255).any(), (level, size, panel, kw)


@pytest.mark.parametrize("size", SIZES)
def test_the_load_bar_shows_load_and_the_badges_show(qapp, size: int) -> None:
    def grey(**kw) -> np.ndarray:
        return seen(Level.OK, size, "dark", "normal", **kw)

    low, high = grey(load=0), grey(load=8)
    bottom = slice(size - max(3, round(size / 8)), size)
    if size >= tray_icon.BAR_FROM:
        assert high[bottom].mean() > low[bottom].mean() + 0.1  # the bar fills with light
        assert np.array_equal(low[: size // 2], high[: size // 2])  # and only the bar changes
    else:
        assert np.array_equal(low, high)  # too small for a bar: the shape gets every pixel
    plain = figure(grey(), "dark")
    paused, snoozed = figure(grey(paused=True), "dark"), figure(grey(snoozed=True), "dark")
    corner = (slice(0, size // 2), slice(size // 2, size))
    assert distance(plain[corner], paused[corner]) > 0.2  # a badge at top right
    assert distance(plain[:, : size // 2], snoozed[:, : size // 2]) > 0.1  # a badge at top left
    assert not np.array_equal(paused, snoozed)


def test_icons_are_cached_per_state(qapp) -> None:
    a = tray_icon.icon(Level.RED, 3, paused=True)
    assert tray_icon.icon(Level.RED, 3, paused=True) is a
    assert tray_icon.icon(Level.RED, 3, paused=False) is not a
    assert {s.width() for s in a.availableSizes()} >= {16, 22, 24, 32, 44, 48}


@pytest.mark.parametrize("size", [16, 22, 24])
def test_a_2x_screen_gets_the_icon_drawn_at_twice_the_pixels(qapp, size: int) -> None:
    """At a device pixel ratio of 2 the tray asks for 32/44/48 px: drawn at that size, not scaled."""
    from PySide6.QtCore import QSize

    pixmap = tray_icon.icon(Level.ORANGE, 4, snoozed=True).pixmap(QSize(size, size), 2.0)
    assert (pixmap.width(), pixmap.devicePixelRatio()) == (2 * size, 2.0)
    drawn = tray_icon.render(Level.ORANGE, 4, 2 * size, snoozed=True)
    assert pixmap.toImage().convertToFormat(drawn.format()) == drawn


def test_load_buckets() -> None:
    assert [tray_icon.bucket(v) for v in (None, 0, 6, 7, 50, 94, 100)] == [None, 0, 0, 1, 4, 8, 8]


@pytest.mark.parametrize("size", [22, 24])
@pytest.mark.parametrize("kind", ["paused", "snoozed"])
def test_a_badge_is_large_enough_to_read_at_panel_sizes(qapp, size: int, kind: str) -> None:
    # a dark disc big enough for its light glyph (a z, two bars) to read: at 22 px the old badge was
    # 83 pixels, mostly its light rim, with 18 dark ones for the glyph to stand on
    def pixels(image) -> np.ndarray:
        return np.frombuffer(image.constBits(), dtype=np.uint8).reshape(size, image.bytesPerLine() // 4, 4)[:, :size].astype(int)

    badged = pixels(tray_icon.render(Level.OK, None, size, paused=kind == "paused", snoozed=kind == "snoozed"))
    changed = np.abs(badged - pixels(tray_icon.render(Level.OK, None, size))).sum(axis=2) > 60
    light = (badged[..., :3].min(axis=2) > 180) & (badged[..., 3] > 200) & changed
    dark = (badged[..., :3].max(axis=2) < 80) & (badged[..., 3] > 200) & changed
    assert changed.sum() >= 0.25 * size * size, f"the badge covers {changed.sum()} pixels"
    assert dark.sum() >= 30 and light.sum() >= 15, (dark.sum(), light.sum())
