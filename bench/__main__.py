"""Run every benchmark and print the figures; `python -m bench --help` for the knobs."""

from bench.detector import main

main()
