"""Start the web chat: `python app.py` is `qa serve`.

Settings come from the environment (QA_CORPUS_DIR, QA_INDEX_DIR, QA_EMBED_MODEL,
QA_HOST, QA_PORT, ...). The index is built first if it is missing or out of date.
"""

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
