"""Sweep query-time tuning values on every evaluation set, one index per set; print R@1/R@5/MRR.

An entry point: the code is `qa.eval.sweep` (`python -m qa.eval.sweep --help`).
"""

import sys

from qa.eval.sweep import main

if __name__ == "__main__":
    sys.exit(main())
