"""Known sounds and how to find them again in what a device heard."""

from __future__ import annotations

from typing import Any

import numpy as np


def sweep(rate: int, seconds: float = 1.0) -> np.ndarray[Any, np.dtype[np.int16]]:
    """A tone rising from 300 Hz by 700 Hz a second: distinctive, and below 4 kHz, so an
    8 kHz telephone codec (G.711) keeps all of it."""
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * (300 * t + 350 * t * t)) * 14000).astype(np.int16)


def best_correlation(template: np.ndarray[Any, Any], signal: np.ndarray[Any, Any]) -> float:
    """The highest normalised cross-correlation of ``template`` anywhere in ``signal``."""
    a = template.astype(np.float64)
    b = signal.astype(np.float64)
    if b.size < a.size:
        return 0.0
    size = 1 << int(np.ceil(np.log2(a.size + b.size)))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[
        : b.size - a.size + 1
    ]
    energy = np.convolve(b * b, np.ones(a.size), mode="valid")
    scores = np.abs(corr) / (np.linalg.norm(a) * np.sqrt(np.maximum(energy, 1e-9)))
    return float(np.max(scores))
