"""The Milvus store against the local one: build and query at scale, and `qa eval`.

An entry point: the code is `qa.bench.milvus` (`python -m qa.bench.milvus --help`).
"""

import sys

from qa.bench.milvus import main

if __name__ == "__main__":
    sys.exit(main())
