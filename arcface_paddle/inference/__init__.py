"""Export to Paddle Inference programs (legacy / PIR, optional ONNX) and the predictors that run them."""
