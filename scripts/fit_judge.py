"""Fit the "nothing found" judge (qa/search/judge.py) on every shared set together; write qa/judge.json.

An entry point: the code is `qa.eval.fit_judge` (`python -m qa.eval.fit_judge --help`).
"""

import sys

from qa.eval.fit_judge import main

if __name__ == "__main__":
    sys.exit(main())
