"""Benchmarks of aioamqp_ext and aiohttp_prometheus_monitoring, as ratios to baselines.

Run ``python -m benchmarks --help`` (or ``scripts/bench``). Every number is measured in one
process session, the contenders of a row interleaved (A B C A B C ...), so that the machine's
noise falls on all of them alike and the ratios of the same run mean something.
"""
