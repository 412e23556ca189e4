"""llmtrace: LLM observability in one line."""
