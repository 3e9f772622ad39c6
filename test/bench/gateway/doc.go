// Package gateway benchmarks the stream gateway: N concurrent 8 kHz streams
// through the gateway against the same streams going straight to the bot,
// giving the latency the gateway adds per frame, its CPU per stream, and the
// most streams one core carries with p99 added latency under 5 ms.
//
//	go test ./test/bench/gateway -run '^$' -bench . -benchtime 1x
//
// The gateway runs in a child process (this test binary re-executed), so its
// CPU is measured on its own and GOMAXPROCS=1 confines it to one core; the
// senders and bots run in the benchmark process. See docs/gateway.md.
package gateway
