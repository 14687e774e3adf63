"""Start the web chat: `python app.py` (same app as `qa serve`).

Settings come from the environment (QA_CORPUS_DIR, QA_INDEX_DIR, QA_EMBED_MODEL, ...;
QA_HOST and QA_PORT for the address). The index is built first if it is missing or
out of date. A user's mistake prints one line and exits with status 2.
"""

import sys

from qa.web import main

if __name__ == "__main__":
    sys.exit(main())
