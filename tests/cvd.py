"""Colour-vision-deficiency simulation for rendered pixels (Machado, Oliveira & Fernandes 2009).

Plain numpy; used by tests/test_icon.py and tools/icon_sheet.py. Never imported by trayapp.
"""

from __future__ import annotations

import numpy as np

# Machado et al. 2009, "A Physiologically-based Model for Simulation of Color Vision Deficiency",
# severity 1.0 (the published table), applied to linear RGB.
MACHADO = {
    "protanopia": np.array([
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ]),
    "deuteranopia": np.array([
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ]),
}


def to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 to linear light (IEC 61966-2-1)."""
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def simulate(rgb: np.ndarray, kind: str) -> np.ndarray:
    """``rgb``: (..., 3) floats in 0..1 (sRGB); the same pixels as seen with ``kind``."""
    return to_srgb(to_linear(rgb) @ MACHADO[kind].T)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance (Rec. 709 weights on linear RGB), 0..1: the grey a colour becomes."""
    return to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def image_rgba(image) -> np.ndarray:
    """A QImage as an (h, w, 4) float array of straight (not premultiplied) RGBA in 0..1."""
    from PySide6.QtGui import QImage

    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = converted.height(), converted.width()
    raw = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.bytesPerLine() * h)
    return raw.reshape(h, converted.bytesPerLine())[:, : w * 4].reshape(h, w, 4).astype(float) / 255.0


def composite(rgba: np.ndarray, background: tuple[float, float, float]) -> np.ndarray:
    """The icon over a panel colour (0..1 sRGB), as a tray shows it: (h, w, 3)."""
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + np.asarray(background, dtype=float) * (1 - alpha)


def from_array(rgb: np.ndarray):
    """(h, w, 3) floats 0..1 back to a QImage (for the icon sheet)."""
    from PySide6.QtGui import QImage

    h, w, _ = rgb.shape
    data = np.ascontiguousarray(np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8))
    image = QImage(data.data, w, h, w * 3, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: ``data`` goes away
