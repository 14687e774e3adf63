"""Measure this project and its peers on every evaluation set in one run; print the README table.

An entry point: the code is `qa.eval.benchmarks` (`python -m qa.eval.benchmarks --help`).
"""

import sys

from qa.eval.benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
