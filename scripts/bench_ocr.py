"""How well are scans read? Character error rate and pages a minute on pages rendered from the bundled articles.

An entry point: the code is `qa.bench.ocr` (`python -m qa.bench.ocr --help`).
"""

import sys

from qa.bench.ocr import main

if __name__ == "__main__":
    sys.exit(main())
