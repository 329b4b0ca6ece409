"""`hardwire bench` and `make demo`: sizes, exactness sweeps and throughput, written to bench/results/."""
