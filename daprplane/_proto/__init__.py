"""Generated gRPC/protobuf stubs, wire-identical to Dapr 1.18."""
