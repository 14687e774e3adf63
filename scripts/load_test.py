"""Load test of the web chat's JSON endpoint: one user, then many at once, then many.

An entry point: the code is `qa.bench.load_test` (`python -m qa.bench.load_test --help`).
"""

import sys

from qa.bench.load_test import main

if __name__ == "__main__":
    sys.exit(main())
