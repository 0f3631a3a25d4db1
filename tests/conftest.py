"""Shared test setup.

pytest-homeassistant-custom-component ships its own ``custom_components`` package for
its testing config. Importing ours here first makes it the one Python caches, so Home
Assistant's loader finds the real integration.

Every test also fails when Doorstep uses something deprecated: Home Assistant's own
reports (``report_usage`` and the deprecation helpers only log a warning for a custom
integration, where they raise for core), and Python's DeprecationWarning raised from
Doorstep's code or the reference doorbell's.
"""

from collections.abc import Iterator
import logging
from pathlib import Path
import warnings

from homeassistant.helpers import frame
import pytest

import custom_components.doorstep  # noqa: F401

_ROOT = Path(__file__).resolve().parent.parent
_OUR_CODE = (_ROOT / "custom_components" / "doorstep", _ROOT / "reference_doorbell")
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class _DeprecationReports(logging.Handler):
    """Keeps Home Assistant's reports of deprecated use that name Doorstep."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        about_us = "doorstep" in message
        deprecated = record.name == frame.__name__ or "deprecat" in message.lower()
        if about_us and deprecated:
            self.reports.append(message)


def _is_ours(filename: str) -> bool:
    path = Path(filename).resolve()
    return any(path.is_relative_to(folder) for folder in _OUR_CODE)


@pytest.fixture(autouse=True)
def _no_deprecated_use() -> Iterator[None]:
    reports = _DeprecationReports()
    logging.getLogger().addHandler(reports)
    # Home Assistant reports each place once per process; forget earlier tests' reports so
    # every test that reaches a deprecated call fails, not only the first.
    frame._REPORTED_INTEGRATIONS.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _DEPRECATIONS)
            yield
    finally:
        logging.getLogger().removeHandler(reports)
    ours = [w for w in caught if issubclass(w.category, _DEPRECATIONS) and _is_ours(w.filename)]
    for w in caught:
        if w not in ours:
            # Hand everything else back to pytest's own warning summary.
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    problems = reports.reports + [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]
    if problems:
        pytest.fail("Doorstep uses something deprecated:\n" + "\n".join(problems))
