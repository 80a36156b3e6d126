"""The version of the installed ``aiohttp-booster`` distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aiohttp-booster")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
