"""Every span attribute name llmtrace writes or reads, in one place.

The OpenTelemetry GenAI conventions are still moving (``gen_ai.system`` became
``gen_ai.provider.name``; cache creation became cache write), so no other module
spells an attribute name: when the standard changes, only this file does.
"""

from __future__ import annotations

from typing import Final

# --- operation and provider -------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
SYSTEM_DEPRECATED: Final = "gen_ai.system"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
OUTPUT_TYPE: Final = "gen_ai.output.type"

# --- request ----------------------------------------------------------------
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_STREAM: Final = "gen_ai.request.stream"
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"

# --- response ---------------------------------------------------------------
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"

# --- usage ------------------------------------------------------------------
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
# Older and peer spellings, read by the storage layer only.
USAGE_PROMPT_TOKENS_OLD: Final = "gen_ai.usage.prompt_tokens"
USAGE_COMPLETION_TOKENS_OLD: Final = "gen_ai.usage.completion_tokens"
OPENLIT_COST: Final = "gen_ai.usage.cost"

# --- content ----------------------------------------------------------------
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"

# --- tools (execute_tool spans) ----------------------------------------------
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"

# --- agents (invoke_agent spans) ----------------------------------------------
AGENT_NAME: Final = "gen_ai.agent.name"

# --- prompts ----------------------------------------------------------------
PROMPT_NAME: Final = "gen_ai.prompt.name"
PROMPT_VERSION: Final = "gen_ai.prompt.version"

# --- OpenAI refinements -----------------------------------------------------
OPENAI_API_TYPE: Final = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"

# --- general OpenTelemetry --------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"

# --- llmtrace's own (not in the conventions; documented in the README) -------
COST_USD: Final = "llmtrace.cost.usd"
COST_STATUS: Final = "llmtrace.cost.status"
COST_SOURCE: Final = "llmtrace.cost.source"  # "server": priced at ingest by llmtrace server (server/span_cost.py)
USAGE_ESTIMATED: Final = "llmtrace.usage.estimated"
ENVIRONMENT: Final = "llmtrace.environment"
RELEASE: Final = "llmtrace.release"
LLMTRACE_PROMPT_NAME: Final = "llmtrace.prompt.name"
LLMTRACE_PROMPT_VERSION: Final = "llmtrace.prompt.version"
# Automatic prompt versions (instrumentation/_prompt_hash.py -> llm_calls.PromptSystemHash/PromptTemplateHash).
PROMPT_SYSTEM_HASH: Final = "llmtrace.prompt.system_hash"
PROMPT_TEMPLATE_HASH: Final = "llmtrace.prompt.template_hash"
STREAM_END: Final = "llmtrace.stream.end"
# Grouping spans (llmtrace.trace / observe); metadata keys follow the prefix.
LLMTRACE_SPAN_TYPE: Final = "llmtrace.span.type"
LLMTRACE_INPUT: Final = "llmtrace.input"
LLMTRACE_OUTPUT: Final = "llmtrace.output"
METADATA_PREFIX: Final = "llmtrace.metadata."
# Scores (llmtrace.score): one short span each, read into llm_scores by schemas/011_llm_scores_mv.sql.
SCORE_NAME: Final = "llmtrace.score.name"
SCORE_VALUE: Final = "llmtrace.score.value"
SCORE_LABEL: Final = "llmtrace.score.label"
SCORE_DATA_TYPE: Final = "llmtrace.score.data_type"
SCORE_COMMENT: Final = "llmtrace.score.comment"
SCORE_SOURCE: Final = "llmtrace.score.source"
SCORE_TRACE_ID: Final = "llmtrace.score.trace_id"
SCORE_SPAN_ID: Final = "llmtrace.score.span_id"

COST_PRICED: Final = "priced"
COST_UNPRICED: Final = "unpriced"
COST_ESTIMATED: Final = "estimated"

# --- operation names ----------------------------------------------------------
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_EMBEDDINGS: Final = "embeddings"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"

# --- read by the storage layer only (schemas/005_llm_calls_mv.sql): older and peer spellings --
DEPLOYMENT_ENVIRONMENT_OLD: Final = "deployment.environment"
EXCEPTION_TYPE: Final = "exception.type"
ENDUSER_ID_OLD: Final = "enduser.id"
GEN_AI_USER_ID_PEER: Final = "gen_ai.user.id"
LLMTRACE_USER_ID: Final = "llmtrace.user.id"
LLMTRACE_SESSION_ID: Final = "llmtrace.session.id"
OPENLIT_REQUEST_IS_STREAM: Final = "gen_ai.request.is_stream"
OPENLIT_TIME_TO_FIRST_TOKEN: Final = "gen_ai.server.time_to_first_token"
OPENLLMETRY_REQUEST_TYPE: Final = "llm.request.type"
OPENLLMETRY_REQUEST_MODEL: Final = "llm.request.model"
OPENLLMETRY_RESPONSE_MODEL: Final = "llm.response.model"
OPENLLMETRY_IS_STREAMING: Final = "llm.is_streaming"
OPENLLMETRY_USAGE_PROMPT_TOKENS: Final = "llm.usage.prompt_tokens"
OPENLLMETRY_USAGE_COMPLETION_TOKENS: Final = "llm.usage.completion_tokens"
OPENLLMETRY_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
OPENLLMETRY_COMPLETION_FINISH_REASON: Final = "gen_ai.completion.0.finish_reason"
OPENLLMETRY_IS_STREAMING_0_62: Final = "gen_ai.is_streaming"
OPENLLMETRY_USAGE_TOTAL_TOKENS_0_62: Final = "gen_ai.usage.total_tokens"
OPENLLMETRY_USAGE_REASONING_TOKENS_0_62: Final = "gen_ai.usage.reasoning_tokens"
# OpenInference (Arize Phoenix's conventions; schemas/030): no gen_ai.* at all.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_PROVIDER: Final = "llm.provider"
OPENINFERENCE_SYSTEM: Final = "llm.system"
OPENINFERENCE_MODEL_NAME: Final = "llm.model_name"
OPENINFERENCE_REQUEST_MODEL_NAME: Final = "llm.request.model_name"
OPENINFERENCE_RESPONSE_MODEL_NAME: Final = "llm.response.model_name"
OPENINFERENCE_EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
OPENINFERENCE_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
OPENINFERENCE_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OPENINFERENCE_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OPENINFERENCE_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
OPENINFERENCE_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OPENINFERENCE_TOKEN_COUNT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
OPENINFERENCE_TOKEN_COUNT_REASONING: Final = "llm.token_count.completion_details.reasoning"
OPENINFERENCE_COST_TOTAL: Final = "llm.cost.total"
OPENINFERENCE_FINISH_REASON: Final = "llm.finish_reason"
OPENINFERENCE_INPUT_VALUE: Final = "input.value"
OPENINFERENCE_OUTPUT_VALUE: Final = "output.value"
OPENINFERENCE_FIRST_TOKEN_EVENT: Final = "First Token Stream Event"
# The anthropic SDK's own call spans (anthropic >= 2): no gen_ai.response.finish_reasons.
ANTHROPIC_SDK_STOP_REASON: Final = "anthropic.message.stop_reason"
