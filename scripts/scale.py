"""Does retrieval hold at 10,000 articles? A corpus generator plus a measurement.

An entry point: the code is `qa.bench.scale` (`python -m qa.bench.scale --help`).
"""

import sys

from qa.bench.scale import main

if __name__ == "__main__":
    sys.exit(main())
