"""Benchmarks. Each runs as ``python -m bench.NAME``, measures Preceptor and its baseline in
the same run, prints a table and, as its last line, one JSON object of figures.

Quote ratios rather than absolute times: machines here are shared and noisy.
"""
