"""The headless inspection core. Nothing in here may import Qt (checked by tests/test_architecture.py)."""
