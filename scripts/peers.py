"""Measure the retrieval a user would build instead (plain LangChain + FAISS, bm25s + jieba) on the same question sets.

An entry point: the code is `qa.eval.peers` (`python -m qa.eval.peers --help`).
"""

import sys

from qa.eval.peers import main

if __name__ == "__main__":
    sys.exit(main())
