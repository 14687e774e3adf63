"""Fit the verdict (qa/search/judge.py) on every set's evidence, read against each corpus's own null; write qa/search/judge.json.

An entry point: the code is `qa.eval.fit_judge` (`python -m qa.eval.fit_judge --help`):
`python scripts/fit_judge.py collect dev extra cmrc2018-trial drcd-dev ats-news-dev`, then
`python scripts/fit_judge.py fit`.
"""

import sys

from qa.eval.fit_judge import main

if __name__ == "__main__":
    sys.exit(main())
