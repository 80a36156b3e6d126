"""An app written against aiohttp-prometheus-monitoring 0.1.5 with a check of its own:
``python monitoring_2018_custom_app.py PORT``, with the repository on ``PYTHONPATH``.

Written as 2018 code wrote it: 0.1.5's ``exceptions`` module, a check of 0.1.5's form
(``tests.compat.monitoring_checks_2018.AnswerMetric``) named in MONITORING by its dotted
path, and the set-up of 0.1.5's example program.
"""

import asyncio
import sys

from aiohttp import web

from aiohttp_prometheus_monitoring import setup_monitoring
from aiohttp_prometheus_monitoring.exceptions import WrongConfiguration

MONITORING = {
    "route_ping": "/ping",
    "route_metrics": "/metrics",
    "metrics": [
        {
            "name": "monitoring_answer",
            "description": "Check the answer",
            "module": "tests.compat.monitoring_checks_2018.AnswerMetric",
            "sleep_time": 60,
            "params": {"answer": True},
        },
    ],
}


def create_app(loop):
    app = web.Application()
    try:
        loop.run_until_complete(setup_monitoring(MONITORING, app))
    except WrongConfiguration as exc:
        sys.exit(f"bad MONITORING: {exc}")
    return app


if __name__ == "__main__":
    setup_loop = asyncio.new_event_loop()
    web.run_app(create_app(setup_loop), host="127.0.0.1", port=int(sys.argv[1]))
    setup_loop.close()
