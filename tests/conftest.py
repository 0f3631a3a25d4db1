"""Shared test setup.

pytest-homeassistant-custom-component ships its own ``custom_components`` package for
its testing config. Importing ours here first makes it the one Python caches, so Home
Assistant's loader finds the real integration.
"""

import custom_components.doorstep  # noqa: F401
