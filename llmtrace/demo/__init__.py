"""A fake LLM HTTP service and traffic scenarios for ``llmtrace demo`` and the tests."""
