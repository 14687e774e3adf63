"""Where passages are searched: the contracts (`base`), FAISS (`faiss_store`), BM25
(`bm25`), Milvus (`milvus`), and the one place a backend is chosen (`factory`)."""
