"""Text rules every stage shares: which characters are Chinese and in which script
(`script`), matching and evaluation forms (`normalize`), sentence ends (`sentences`),
BM25 tokens (`tokens`) and the English-Chinese dictionary (`translate`)."""
