"""A CAMS stand-in for tests, benchmarks and the demo: the real wire format, strict signature checks,
per-account flow control, configurable accounts and spaces, and fault injection.

Run it with `cams-simulator` or `python -m cams_simulator`.
"""
