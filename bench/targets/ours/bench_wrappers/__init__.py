"""The benchmark's models for our service (WRAPPERS_PACKAGE=bench_wrappers): one module per model, as a user writes them."""
