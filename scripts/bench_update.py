"""How long an article change takes to reach the index, against a full build.

An entry point: the code is `qa.bench.update` (`python -m qa.bench.update --help`).
"""

import sys

from qa.bench.update import main

if __name__ == "__main__":
    sys.exit(main())
