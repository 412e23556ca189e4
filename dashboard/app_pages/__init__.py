"""One module per dashboard page; each renders only (data comes from ``llmtrace.analytics``)."""
