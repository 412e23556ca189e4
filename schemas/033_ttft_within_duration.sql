-- A time to first token is at most the call's duration. The anthropic SDK's own spans (2.x) time
-- gen_ai.response.time_to_first_chunk from a clock read before the span starts, so on a short
-- stream whose last event follows its first delta within that gap, the TTFT came out longer than
-- the span (seen once in CI: a fake-LLM stream of a few events). Such a row broke "TTFT <= latency"
-- on every page and left the output speed without its first-token share. The view's query is
-- 030's with that clamp alone, replaced in one ALTER as 030 does; rows already stored are left as
-- they were (only a few microseconds over, where it happened).
ALTER TABLE llm_calls_mv {on_cluster}
MODIFY QUERY SELECT
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
    lower(coalesce(
        nullIf(t.SpanAttributes['gen_ai.provider.name'], ''),
        nullIf(t.SpanAttributes['gen_ai.system'], ''),
        nullIf(t.SpanAttributes['llm.provider'], ''),
        t.SpanAttributes['llm.system']
    )) AS Provider,
    multiIf(
        t.SpanAttributes['gen_ai.operation.name'] != '', t.SpanAttributes['gen_ai.operation.name'],
        t.SpanAttributes['llm.request.type'] = 'completion', 'text_completion',
        t.SpanAttributes['llm.request.type'] = 'embedding', 'embeddings',
        t.SpanAttributes['llm.request.type'] != '', t.SpanAttributes['llm.request.type'],
        t.SpanAttributes['openinference.span.kind'] = 'LLM', 'chat',
        t.SpanAttributes['openinference.span.kind'] = 'EMBEDDING', 'embeddings',
        t.SpanAttributes['openinference.span.kind'] = 'RERANKER', 'rerank',
        ''
    ) AS Operation,
    coalesce(
        nullIf(t.SpanAttributes['gen_ai.request.model'], ''),
        nullIf(t.SpanAttributes['llm.request.model'], ''),
        nullIf(t.SpanAttributes['llm.request.model_name'], ''),
        nullIf(JSONExtractString(t.SpanAttributes['llm.invocation_parameters'], 'model'), ''),
        nullIf(t.SpanAttributes['llm.model_name'], ''),
        t.SpanAttributes['embedding.model_name']
    ) AS RequestModel,
    coalesce(
        nullIf(t.SpanAttributes['gen_ai.response.model'], ''),
        nullIf(t.SpanAttributes['llm.response.model'], ''),
        nullIf(t.SpanAttributes['llm.response.model_name'], ''),
        -- OpenInference's OpenAI instrumentor puts the response's model in llm.model_name; its
        -- Anthropic one names both models and, on a failed call, puts the request's there.
        nullIf(if(t.SpanAttributes['llm.request.model_name'] = '', t.SpanAttributes['llm.model_name'], ''), ''),
        t.SpanAttributes['embedding.model_name']
    ) AS ResponseModel,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.input_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.prompt_tokens'], ''),
        nullIf(t.SpanAttributes['llm.usage.prompt_tokens'], ''),
        t.SpanAttributes['llm.token_count.prompt']
    )) AS InputTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.output_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.completion_tokens'], ''),
        nullIf(t.SpanAttributes['llm.usage.completion_tokens'], ''),
        t.SpanAttributes['llm.token_count.completion']
    )) AS OutputTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.cache_read.input_tokens'], ''),
        t.SpanAttributes['llm.token_count.prompt_details.cache_read']
    )) AS CacheReadTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.cache_write.input_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.cache_creation.input_tokens'], ''),
        t.SpanAttributes['llm.token_count.prompt_details.cache_write']
    )) AS CacheWriteTokens,
    toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['gen_ai.usage.reasoning.output_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.reasoning_tokens'], ''),
        t.SpanAttributes['llm.token_count.completion_details.reasoning']
    )) AS ReasoningTokens,
    if(InputTokens + OutputTokens > 0, InputTokens + OutputTokens, toUInt64OrZero(coalesce(
        nullIf(t.SpanAttributes['llm.usage.total_tokens'], ''),
        nullIf(t.SpanAttributes['gen_ai.usage.total_tokens'], ''),
        t.SpanAttributes['llm.token_count.total']
    ))) AS TotalTokens,
    coalesce(
        toFloat64OrNull(t.SpanAttributes['llmtrace.cost.usd']),
        toFloat64OrNull(t.SpanAttributes['gen_ai.usage.cost']),
        toFloat64OrNull(t.SpanAttributes['llm.cost.total'])
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
    -- NULL when absent; negative clock skew reads as 0, and a first token after the span's end as the
    -- span's duration (see this file's header). OpenLIT names it gen_ai.server.time_to_first_token (on a
    -- call without a stream too, where it is the whole response's time: not a TTFT); OpenInference
    -- records no TTFT attribute but an event at the first streamed token.
    toUInt64(round(1e6 * multiIf(
        (coalesce(
            toFloat64OrNull(t.SpanAttributes['gen_ai.response.time_to_first_chunk']),
            if(t.SpanAttributes['gen_ai.request.stream'] = 'true' OR t.SpanAttributes['gen_ai.request.is_stream'] = 'true',
                toFloat64OrNull(t.SpanAttributes['gen_ai.server.time_to_first_token']), NULL),
            if(has(t.`Events.Name`, 'First Token Stream Event'),
                (toUnixTimestamp64Nano(t.`Events.Timestamp`[indexOf(t.`Events.Name`, 'First Token Stream Event')])
                    - toUnixTimestamp64Nano(t.Timestamp)) / 1e9,
                NULL)
        ) AS TtftSeconds) < 0, 0,
        TtftSeconds > DurationUs / 1e6, DurationUs / 1e6,
        TtftSeconds
    ))) AS TtftUs,
    toUInt8(
        t.SpanAttributes['gen_ai.request.stream'] = 'true'
        OR t.SpanAttributes['llm.is_streaming'] = 'true'
        OR t.SpanAttributes['gen_ai.request.is_stream'] = 'true'
        OR t.SpanAttributes['gen_ai.is_streaming'] = 'true'
        OR JSONExtractBool(t.SpanAttributes['llm.invocation_parameters'], 'stream')
    ) AS IsStream,
    multiIf(
        startsWith(t.SpanAttributes['gen_ai.response.finish_reasons'], '['),
            JSONExtract(t.SpanAttributes['gen_ai.response.finish_reasons'], 'Array(String)'),
        t.SpanAttributes['gen_ai.response.finish_reasons'] != '',
            [t.SpanAttributes['gen_ai.response.finish_reasons']],
        t.SpanAttributes['gen_ai.completion.0.finish_reason'] != '',
            [t.SpanAttributes['gen_ai.completion.0.finish_reason']],
        t.SpanAttributes['llm.finish_reason'] != '', [t.SpanAttributes['llm.finish_reason']],
        t.SpanAttributes['anthropic.message.stop_reason'] != '', [t.SpanAttributes['anthropic.message.stop_reason']],
        CAST([], 'Array(String)')
    ) AS FinishReasons,
    FinishReasons[1] AS FinishReason,
    toUInt8(hasAny(FinishReasons, ['tool_calls', 'tool_use', 'function_call'])) AS HasToolCalls,
    multiIf(
        t.StatusCode IN ('Error', 'STATUS_CODE_ERROR', 'ERROR', '2'), 'Error',
        t.StatusCode IN ('Ok', 'STATUS_CODE_OK', 'OK', '1'), 'Ok',
        'Unset'
    ) AS StatusCode,
    -- The OTel contrib openai-v2 instrumentation writes str(type) ("<class 'openai.BadRequestError'>"),
    -- OpenLLMetry the bare class name (BadRequestError) beside its exception event's qualified one.
    coalesce(
        nullIf(if(
            position(replaceRegexpOne(t.SpanAttributes['error.type'], '^<class \'(.+)\'>$', '\\1'), '.') = 0 AND replaceRegexpOne(t.SpanAttributes['error.type'], '^<class \'(.+)\'>$', '\\1') != ''
                AND endsWith(arrayFirst(x -> x != '', arrayMap(a -> a['exception.type'], t.`Events.Attributes`)), concat('.', replaceRegexpOne(t.SpanAttributes['error.type'], '^<class \'(.+)\'>$', '\\1'))),
            arrayFirst(x -> x != '', arrayMap(a -> a['exception.type'], t.`Events.Attributes`)),
            replaceRegexpOne(t.SpanAttributes['error.type'], '^<class \'(.+)\'>$', '\\1')
        ), ''),
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
        t.SpanAttributes['openinference.span.kind'] = 'LLM', 'chat',
        t.SpanAttributes['openinference.span.kind'] = 'EMBEDDING', 'embeddings',
        t.SpanAttributes['openinference.span.kind'] = 'RERANKER', 'rerank',
        t.SpanAttributes['gen_ai.system'] != '' OR t.SpanAttributes['gen_ai.provider.name'] != '', 'chat',
        ''
    ) IN ('chat', 'text_completion', 'generate_content', 'embeddings', 'completion', 'embedding', 'rerank');
