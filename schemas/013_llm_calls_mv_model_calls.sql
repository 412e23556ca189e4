-- llm_calls_mv restated (dropped and created again: the cluster layout maps a view's source and
-- target to the shard tables in CREATE statements only) for two changes:
-- 1. Only model calls become llm_calls rows. 005 took every span with a gen_ai.* attribute, so
--    execute_tool spans (llmtrace.tool, agent frameworks), invoke_agent/create_agent spans and
--    framework workflow spans were counted as LLM calls. Now: the operation (gen_ai.operation.name,
--    else OpenLLMetry's llm.request.type) is an inference or embeddings one, or absent on a span
--    that names a GenAI system (older conventions had no operation name).
-- 2. The prompt hashes of 012 are filled in.
-- Rows already in llm_calls are left as they were; only spans inserted from now on are filtered.
-- The WHERE reads only the source row (t.X), so llmtrace.server.sink can count what the view selects.
DROP VIEW IF EXISTS llm_calls_mv {on_cluster};
CREATE MATERIALIZED VIEW IF NOT EXISTS llm_calls_mv {on_cluster}
TO llm_calls
AS SELECT
    t.Timestamp AS Timestamp,
    t.TraceId AS TraceId,
    t.SpanId AS SpanId,
    t.ParentSpanId AS ParentSpanId,
    t.SpanName AS SpanName,
    t.ServiceName AS ServiceName,
    coalesce(
        nullIf(t.SpanAttributes['llmtrace.environment'], ''),
        nullIf(t.ResourceAttributes['deployment.environment.name'], ''),
        t.ResourceAttributes['deployment.environment']
    ) AS Environment,
    coalesce(nullIf(t.SpanAttributes['llmtrace.release'], ''), t.ResourceAttributes['service.version']) AS Release,
    lower(coalesce(nullIf(t.SpanAttributes['gen_ai.provider.name'], ''), t.SpanAttributes['gen_ai.system']))
        AS Provider,
    multiIf(
        t.SpanAttributes['gen_ai.operation.name'] != '', t.SpanAttributes['gen_ai.operation.name'],
        t.SpanAttributes['llm.request.type'] = 'completion', 'text_completion',
        t.SpanAttributes['llm.request.type'] = 'embedding', 'embeddings',
        t.SpanAttributes['llm.request.type']
    ) AS Operation,
    coalesce(nullIf(t.SpanAttributes['gen_ai.request.model'], ''), t.SpanAttributes['llm.request.model'])
        AS RequestModel,
    coalesce(nullIf(t.SpanAttributes['gen_ai.response.model'], ''), t.SpanAttributes['llm.response.model'])
        AS ResponseModel,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.input_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.prompt_tokens'], ''),
        t.SpanAttributes['llm.usage.prompt_tokens']
    )) AS InputTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.output_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.completion_tokens'], ''),
        t.SpanAttributes['llm.usage.completion_tokens']
    )) AS OutputTokens,
    toUInt64OrZero(t.SpanAttributes['gen_ai.usage.cache_read.input_tokens']) AS CacheReadTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.cache_write.input_tokens'], ''),
        t.SpanAttributes['gen_ai.usage.cache_creation.input_tokens']
    )) AS CacheWriteTokens,
    toUInt64OrZero(t.SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS ReasoningTokens,
    if(InputTokens + OutputTokens > 0, InputTokens + OutputTokens,
        toUInt64OrZero(t.SpanAttributes['llm.usage.total_tokens'])) AS TotalTokens,
    coalesce(
        toFloat64OrNull(t.SpanAttributes['llmtrace.cost.usd']),
        toFloat64OrNull(t.SpanAttributes['gen_ai.usage.cost'])
    ) AS CostUsd,
    -- 'no_usage': nothing to price (e.g. a call that failed before reporting tokens), so it is
    -- neither free nor unpriced.
    multiIf(
        t.SpanAttributes['llmtrace.cost.status'] != '', t.SpanAttributes['llmtrace.cost.status'],
        CostUsd IS NOT NULL, 'priced',
        TotalTokens > 0, 'unpriced',
        'no_usage'
    ) AS CostStatus,
    intDiv(t.Duration, 1000) AS DurationUs,
    -- NULL when absent (greatest() would turn NULL into 0); negative clock skew reads as 0.
    toUInt64(round(1e6 * if(
        toFloat64OrNull(t.SpanAttributes['gen_ai.response.time_to_first_chunk']) < 0, 0,
        toFloat64OrNull(t.SpanAttributes['gen_ai.response.time_to_first_chunk'])
    ))) AS TtftUs,
    toUInt8(
        t.SpanAttributes['gen_ai.request.stream'] = 'true'
        OR t.SpanAttributes['llm.is_streaming'] = 'true'
        OR t.SpanAttributes['gen_ai.request.is_stream'] = 'true'
    ) AS IsStream,
    multiIf(
        startsWith(t.SpanAttributes['gen_ai.response.finish_reasons'], '['),
            JSONExtract(t.SpanAttributes['gen_ai.response.finish_reasons'], 'Array(String)'),
        t.SpanAttributes['gen_ai.response.finish_reasons'] != '',
            [t.SpanAttributes['gen_ai.response.finish_reasons']],
        t.SpanAttributes['gen_ai.completion.0.finish_reason'] != '',
            [t.SpanAttributes['gen_ai.completion.0.finish_reason']],
        CAST([], 'Array(String)')
    ) AS FinishReasons,
    FinishReasons[1] AS FinishReason,
    toUInt8(hasAny(FinishReasons, ['tool_calls', 'tool_use', 'function_call'])) AS HasToolCalls,
    multiIf(
        t.StatusCode IN ('Error', 'STATUS_CODE_ERROR', 'ERROR', '2'), 'Error',
        t.StatusCode IN ('Ok', 'STATUS_CODE_OK', 'OK', '1'), 'Ok',
        'Unset'
    ) AS StatusCode,
    coalesce(
        nullIf(t.SpanAttributes['error.type'], ''),
        nullIf(arrayFirst(x -> x != '', arrayMap(a -> a['exception.type'], t.`Events.Attributes`)), ''),
        if(StatusCode = 'Error', '_OTHER', '')
    ) AS ErrorType,
    toUInt8(StatusCode = 'Error' OR ErrorType != '') AS IsError,
    coalesce(nullIf(t.SpanAttributes['gen_ai.prompt.name'], ''), t.SpanAttributes['llmtrace.prompt.name'])
        AS PromptName,
    coalesce(nullIf(t.SpanAttributes['gen_ai.prompt.version'], ''), t.SpanAttributes['llmtrace.prompt.version'])
        AS PromptVersion,
    coalesce(
        nullIf(t.SpanAttributes['user.id'], ''),
        nullIf(t.SpanAttributes['gen_ai.user.id'], ''),
        nullIf(t.SpanAttributes['llmtrace.user.id'], ''),
        nullIf(t.SpanAttributes['enduser.id'], ''),
        t.ResourceAttributes['user.id']
    ) AS UserId,
    coalesce(
        nullIf(t.SpanAttributes['session.id'], ''),
        nullIf(t.SpanAttributes['gen_ai.conversation.id'], ''),
        t.SpanAttributes['llmtrace.session.id']
    ) AS SessionId,
    t.SpanAttributes['llmtrace.prompt.system_hash'] AS PromptSystemHash,
    t.SpanAttributes['llmtrace.prompt.template_hash'] AS PromptTemplateHash,
    t.SpanAttributes['server.address'] AS ServerAddress,
    toUInt8(t.SpanAttributes['llmtrace.usage.estimated'] IN ('true', '1')) AS UsageEstimated,
    if(
        OutputTokens > 0 AND DurationUs > ifNull(TtftUs, 0),
        OutputTokens / ((DurationUs - ifNull(TtftUs, 0)) / 1e6),
        0
    ) AS OutputTokensPerSecond
FROM otel_traces AS t
WHERE multiIf(
        t.SpanAttributes['gen_ai.operation.name'] != '', t.SpanAttributes['gen_ai.operation.name'],
        t.SpanAttributes['llm.request.type'] != '', t.SpanAttributes['llm.request.type'],
        t.SpanAttributes['gen_ai.system'] != '' OR t.SpanAttributes['gen_ai.provider.name'] != '', 'chat',
        ''
    ) IN ('chat', 'text_completion', 'generate_content', 'embeddings', 'completion', 'embedding', 'rerank');
