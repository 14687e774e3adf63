"""Measuring retrieval: question files and metrics (`evaluate`), every set in one run
(`benchmarks`), the peers a user would pick instead (`peers`), fitting the judge
(`fit_judge`), parameter sweeps (`sweep`). Scripts in scripts/ call these."""
