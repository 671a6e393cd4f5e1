// Build-only module: the SignCertificate load generator of bench/bench_sentry.py. Versions are
// the ones Dapr 1.18.3 builds with (tests/dapr/tools), so a machine that built Dapr has them.
module daprplane.bench/sentryload

go 1.26.6

require (
	google.golang.org/grpc v1.82.1
	google.golang.org/protobuf v1.36.11
)

require (
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260727163830-6c54dddc4772 // indirect
)
