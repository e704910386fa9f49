"""Development parts that sit on top of the product: the embedded broker, the synthetic
workload (and its caption corpus), the demo with its summary, and the benchmarks."""
