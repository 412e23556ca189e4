"""Span exporters that write straight to storage (for setups without a Collector)."""
