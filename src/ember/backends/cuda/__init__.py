"""The CUDA backend: runtime (driver, devices, streams, events, caching allocator, graphs) and kernels."""
