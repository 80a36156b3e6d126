"""Serve the 2018 README's "Usage" sample: ``python monitoring_2018_readme_app.py DIR PORT``.

``DIR`` holds ``readme_usage.py`` and ``settings.py`` (the README's "Sample config"). The
sample defines ``create_app(loop=None)`` around ``settings.MONITORING`` without importing
``settings`` or serving anything, as the README prints it. So this runs the sample as a script
with ``settings`` in its globals, then serves ``create_app(loop)`` on 127.0.0.1:PORT the way
the 2018 example program (``example/main.py``) does.
"""

from __future__ import annotations

import asyncio
import importlib
import runpy
import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    """Run the sample, then serve the app it builds until SIGINT."""
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    sys.path.insert(0, str(directory))
    settings = importlib.import_module("settings")
    sample = runpy.run_path(
        str(directory / "readme_usage.py"), init_globals={"settings": settings}, run_name="__main__"
    )
    loop = asyncio.new_event_loop()
    app = sample["create_app"](loop)
    web.run_app(app, host="127.0.0.1", port=port)
    loop.close()


if __name__ == "__main__":
    main()
