// SPDX-License-Identifier: MIT

// finalizer_bench_go is the Go side of kslab's finalizer bench: Go's own
// finalizer machinery, runtime.SetFinalizer, on 64-byte objects, measured
// the way tools/bench/finalizer_bench.c measures kmem_set_finalizer().
//
// One process runs one test and prints one line,
//
//	result test=fin-<test> alloc=go impl=go ns_per_obj=<f> iters=<N> reps=<R>
//
// plus "info" lines for context, so that run.sh can alternate it with the
// kslab process, as it does for the other benches.
//
// Tests:
//
//	set    N times p := new(T64); runtime.SetFinalizer(p, fin), each
//	       pointer kept in a slice; ns per object.  The garbage
//	       collections the allocations start are part of the cost.
//	drain  N objects with finalizers and a collection with all of them
//	       live (not timed, so the sweeping the allocations left is not
//	       counted), then the slice that keeps them is dropped,
//	       runtime.GC() runs, and the clock stops when the last finalizer
//	       has run (the one that brings a shared counter to N closes a
//	       channel); ns per object.  gc_call_ns, in the info line, is the
//	       part spent inside runtime.GC(), while the finalizer goroutine
//	       already runs.
//
// Method, as in the C benches: the clock is the runtime's monotonic clock
// (CLOCK_MONOTONIC on Linux); each test runs once untimed, then --reps
// times, and the best repetition is reported.  Between repetitions, not
// timed, every finalizer is run and a second collection frees the objects
// (an object with a finalizer is kept for one more cycle after it runs),
// so each repetition starts from the same empty heap.  Standard library
// only: the build needs no network.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// T64 is the benchmark object: 64 bytes, one size class of its own.
type T64 struct {
	payload [8]uint64
}

// live keeps the objects of the current repetition reachable; dropping
// it (live = nil) is what the drain test times.
var live []*T64

// finalized counts finalizers run in this repetition; the one that
// brings it to target closes done.
var (
	finalized atomic.Int64
	target    int64
	done      chan struct{}
)

// fin is the trivial finalizer: count, and signal the last one.
func fin(p *T64) {
	if finalized.Add(1) == target {
		close(done)
	}
}

// arm resets the counter for n finalizers to come.
func arm(n int) {
	finalized.Store(0)
	target = int64(n)
	done = make(chan struct{})
}

// fill allocates n objects, sets a finalizer on each and keeps them in
// live; the harness slice is allocated before, outside the loop.
func fill(n int) {
	objs := make([]*T64, n)
	for i := range objs {
		p := new(T64)
		p.payload[0] = uint64(i)
		runtime.SetFinalizer(p, fin)
		objs[i] = p
	}
	live = objs
}

// settle frees what the finalizers of the last repetition left: the
// objects themselves go in the collection after their finalizer ran.
func settle() {
	runtime.GC()
	runtime.GC()
}

// times of one repetition: the figure, and for drain the part of it spent
// in runtime.GC() (the finalizer goroutine runs meanwhile).
type times struct {
	total time.Duration
	gc    time.Duration
}

func setPass(n int) times {
	var t times

	arm(n)
	t0 := time.Now()
	fill(n)
	t.total = time.Since(t0)
	live = nil
	runtime.GC()
	<-done
	settle()
	return t
}

// drainPass starts from a quiet heap: a collection with every object still
// live finishes the work the allocations left, so that the clock sees
// only what dropping the objects costs.
func drainPass(n int) times {
	var t times

	arm(n)
	fill(n)
	runtime.GC()
	t0 := time.Now()
	live = nil
	runtime.GC()
	t.gc = time.Since(t0)
	<-done
	t.total = time.Since(t0)
	settle()
	return t
}

func perObj(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / float64(n)
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "finalizer_bench_go: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	test := flag.String("test", "", "set or drain")
	iters := flag.Int("iters", 1000000, "objects per repetition")
	reps := flag.Int("reps", 5, "timed repetitions; the best is reported")
	flag.Parse()
	if flag.NArg() != 0 || *iters <= 0 || *reps <= 0 {
		flag.Usage()
		os.Exit(2)
	}

	var pass func(int) times
	switch *test {
	case "set":
		pass = setPass
	case "drain":
		pass = drainPass
	default:
		die("unknown --test '%s' (set or drain)", *test)
	}

	var ms0, ms1 runtime.MemStats
	pass(*iters)
	runtime.ReadMemStats(&ms0)
	var best times
	for r := 0; r < *reps; r++ {
		if t := pass(*iters); r == 0 || t.total < best.total {
			best = t
		}
	}
	runtime.ReadMemStats(&ms1)

	fmt.Printf("result test=fin-%s alloc=go impl=go ns_per_obj=%.2f iters=%d reps=%d\n",
		*test, perObj(best.total, *iters), *iters, *reps)
	fmt.Printf("info test=fin-%s alloc=go go_version=%s gomaxprocs=%d per_rep_gcs=%.1f gc_pause_total_ms=%.2f",
		*test, runtime.Version(), runtime.GOMAXPROCS(0),
		float64(ms1.NumGC-ms0.NumGC)/float64(*reps),
		float64(ms1.PauseTotalNs-ms0.PauseTotalNs)/1e6)
	if *test == "drain" {
		fmt.Printf(" gc_call_ns=%.2f", perObj(best.gc, *iters))
	}
	fmt.Println()
}
