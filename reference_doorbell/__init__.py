"""A doorbell that speaks the Doorstep local protocol v1: emulator and DIY doorbell."""

__version__ = "0.1.0"
