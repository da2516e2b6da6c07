"""Wire formats (gRPC, HTTP) <-> pipeline types. The only package that imports *_pb2."""
