"""The faces over the network: the chat service without gradio (`service`, `limits`,
`views`), the gradio page and its HTTP API (`web`, `http`), and the LangChain
retriever (`langchain`)."""
