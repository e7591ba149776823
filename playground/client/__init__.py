"""The wire: request and response models (schema), where requests go (endpoint), the client and
its stream, the error family, and the Run that ChatClient.run records. `_sse` and `_cancel` are
private helpers of the stream and the client."""
