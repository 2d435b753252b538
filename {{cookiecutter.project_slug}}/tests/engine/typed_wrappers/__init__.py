"""Wrappers with typed entries (`run_api`), served by test_typed_runs.py: each module is one model."""
