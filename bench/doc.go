// Package bench is enrichproxy's benchmark harness (results and how to read them:
// docs/benchmarks.md). It holds:
//
//   - run.sh: throughput and latency of enrichproxy against no proxy, nginx,
//     httputil.ReverseProxy and a minimal net/http forwarder, in one run, alternating,
//     with wrk on loopback; then memory.sh;
//   - memory.sh: peak RSS, heap and stacks per in-flight request while a slow vendor
//     holds 1,000 and 5,000 requests;
//   - profile.sh: perf call graphs of a proxy under the run.sh load;
//   - upstream/, reverseproxy/, forwarder/, hold/: the programs those scripts run
//     (the vendor stand-in, the two Go baselines, the client that holds N requests);
//   - BenchmarkHandler and BenchmarkHeld: the same comparisons in process, for pprof CPU,
//     allocation and heap profiles of the real handlers.
package bench
