"""Side-by-side benchmarks: each capability against its anchors, same inputs, one process."""
