"""Measuring speed, memory and scale: the one bench command (`run`), the scale
section (`scale`), encoder options (`encoders`), Milvus (`milvus`), many users
(`load_test`), incremental builds (`update`)."""
