"""The index folder: what it holds (`layout`), building it (`build`), writing it safely
(`write`), reading it for questions (`read`), and whether it is up to date
(`freshness`). The reader never imports the builder."""
