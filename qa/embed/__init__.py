"""Text to vectors: the `Encoder` contract (`base`), one module per backend, the
factory that picks one (`factory`), question batching (`batching`), and the one-time
conversion (`convert`) and ONNX export (`onnx_export`) of the bundled model."""
