"""Which encoder backend embeds fastest at equal quality? Every option on the same texts, in one run.

An entry point: the code is `qa.bench.encoders` (`python -m qa.bench.encoders --help`).
"""

import sys

from qa.bench.encoders import main

if __name__ == "__main__":
    sys.exit(main())
