-- otlp_spans: finished runs and their events as OTLP JSON spans (gen_ai.* and OpenInference attributes), for `monitor export`
-- grain: one row per span: each run's `invoke_agent` span, then its events' spans in order
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds of run start, optional)
-- reads: executions, events
-- columns: host (the run's host, for the OTLP resource), is_run (the span of a run, not of an
--          event), span (one OTLP JSON span object as text).
-- The same mapping as kagura/observability/otel/export.py (which builds protobuf pushes);
-- tests check that both give the same spans. Ids: `exec_` + 28 hex digits -> trace id
-- '0000' + those digits, span id their last 16; other ids are hashed with md5.
WITH runs AS (
    SELECT
        *,
        CASE
            WHEN length(coalesce(trace_id, id)) = 33 AND starts_with(coalesce(trace_id, id), 'exec_')
                AND regexp_full_match(substr(coalesce(trace_id, id), 6), '[0-9a-f]{28}')
                THEN '0000' || substr(coalesce(trace_id, id), 6)
            WHEN regexp_full_match(coalesce(trace_id, id), '[0-9a-f]{32}') THEN coalesce(trace_id, id)
            ELSE md5(coalesce(trace_id, id))
        END AS _trace,
        CASE
            WHEN length(id) = 33 AND starts_with(id, 'exec_') AND regexp_full_match(substr(id, 18), '[0-9a-f]{16}')
                THEN substr(id, 18)
            WHEN length(id) = 21 AND starts_with(id, 'otel_') AND regexp_full_match(substr(id, 6), '[0-9a-f]{16}')
                THEN substr(id, 6)
            ELSE left(md5(id), 16)
        END AS _span,
        CASE
            WHEN parent_id IS NULL OR parent_id = '' THEN NULL
            WHEN length(parent_id) = 33 AND starts_with(parent_id, 'exec_')
                AND regexp_full_match(substr(parent_id, 18), '[0-9a-f]{16}') THEN substr(parent_id, 18)
            WHEN length(parent_id) = 21 AND starts_with(parent_id, 'otel_')
                AND regexp_full_match(substr(parent_id, 6), '[0-9a-f]{16}') THEN substr(parent_id, 6)
            ELSE left(md5(parent_id), 16)
        END AS _parent,
        coalesce(
            nullif(session_id, ''),
            CASE WHEN tags LIKE '%session%'
                THEN coalesce(json_extract_string(tags, '$.session_id'), json_extract_string(tags, '$.session'))
            END
        ) AS _session
    FROM executions
    WHERE status <> 'running'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
),
run_spans AS (
    SELECT
        started_at AS _order_at, id AS _run, -1 AS _seq, host,
        concat(
            '{"traceId":"', _trace, '","spanId":"', _span, '",',
            coalesce('"parentSpanId":"' || _parent || '",', ''),
            '"name":', to_json('invoke_agent ' || agent_name),
            ',"kind":1,"startTimeUnixNano":"', CAST(round(started_at * 1e9) AS HUGEINT),
            '","endTimeUnixNano":"',
            CAST(round(coalesce(ended_at, started_at + coalesce(duration, 0.0)) * 1e9) AS HUGEINT),
            '","attributes":[',
            concat_ws(',',
                '{"key":"gen_ai.operation.name","value":{"stringValue":"invoke_agent"}}',
                '{"key":"gen_ai.agent.name","value":{"stringValue":' || to_json(agent_name) || '}}',
                '{"key":"gen_ai.agent.id","value":{"stringValue":' || to_json(id) || '}}',
                '{"key":"openinference.span.kind","value":{"stringValue":"AGENT"}}',
                '{"key":"kagura.execution.id","value":{"stringValue":' || to_json(id) || '}}',
                CASE WHEN _parent IS NOT NULL
                    THEN '{"key":"kagura.parent.id","value":{"stringValue":' || to_json(parent_id) || '}}' END,
                CASE WHEN (CASE WHEN starts_with(_trace, '0000') THEN 'exec_' || substr(_trace, 5) ELSE _trace END)
                        <> coalesce(trace_id, id)
                    THEN '{"key":"kagura.trace.id","value":{"stringValue":' || to_json(coalesce(trace_id, id)) || '}}' END,
                CASE WHEN model IS NOT NULL AND model <> ''
                    THEN '{"key":"gen_ai.request.model","value":{"stringValue":' || to_json(model) || '}}' END,
                '{"key":"gen_ai.conversation.id","value":{"stringValue":' || to_json(_session) || '}}',
                '{"key":"session.id","value":{"stringValue":' || to_json(_session) || '}}',
                CASE WHEN user_id <> ''
                    THEN '{"key":"user.id","value":{"stringValue":' || to_json(user_id) || '}}' END,
                CASE WHEN tags NOT IN ('', '{}', 'null', '[]')
                    THEN '{"key":"kagura.tags","value":{"stringValue":' || to_json(tags) || '}}' END,
                CASE WHEN metadata NOT IN ('', '{}', 'null', '[]')
                    THEN '{"key":"metadata","value":{"stringValue":' || to_json(metadata) || '}}' END,
                CASE WHEN status <> 'completed'
                    THEN '{"key":"kagura.status","value":{"stringValue":' || to_json(status) || '}}' END,
                CASE WHEN status = 'failed'
                    THEN '{"key":"error.type","value":{"stringValue":'
                        || to_json(coalesce(nullif(error_type, ''), '_OTHER')) || '}}' END
            ),
            '],"status":',
            CASE
                WHEN status <> 'failed' THEN '{}'
                WHEN error IS NULL OR error = '' THEN '{"code":2}'
                ELSE '{"code":2,"message":' || to_json(error) || '}'
            END,
            '}'
        ) AS span
    FROM runs
),
event_rows AS (
    SELECT
        e.*, r.started_at AS _order_at, r._trace, r._span AS _run_span, r.host,
        CASE WHEN e.type = 'llm_call' AND e.data LIKE '%provider%'
            THEN json_extract_string(e.data, '$.provider') END AS _data_provider,
        CASE WHEN e.type = 'llm_call' AND e.data LIKE '%response_model%'
            THEN json_extract_string(e.data, '$.response_model') END AS _response_model,
        CASE WHEN e.type = 'tool_call' AND e.data LIKE '%tool_call_id%'
            THEN json_extract_string(e.data, '$.tool_call_id') END AS _tool_call_id,
        CASE WHEN e.data LIKE '%error_type%'
            THEN json_extract_string(e.data, '$.error_type') END AS _error_type,
        CASE
            WHEN e.name IN ('search_memory', 'create_memory', 'update_memory', 'upsert_memory', 'delete_memory')
                THEN e.name
            WHEN lower(e.name) IN ('store', 'save') THEN 'upsert_memory'
            WHEN lower(e.name) = 'create' THEN 'create_memory'
            WHEN lower(e.name) = 'update' THEN 'update_memory'
            WHEN lower(e.name) = 'delete' THEN 'delete_memory'
            ELSE 'search_memory'
        END AS _memory_operation
    FROM events AS e
    JOIN runs AS r ON r.id = e.execution_id
),
events_named AS (
    SELECT
        *,
        coalesce(
            _data_provider,
            CASE
                WHEN contains(name, '/') THEN split_part(name, '/', 1)
                WHEN starts_with(name, 'gpt-') OR starts_with(name, 'o1') OR starts_with(name, 'o3')
                    OR starts_with(name, 'o4') OR starts_with(name, 'text-embedding') THEN 'openai'
                WHEN starts_with(name, 'claude') THEN 'anthropic'
                WHEN starts_with(name, 'gemini') THEN 'gcp.gemini'
            END
        ) AS _provider,
        CASE type
            WHEN 'llm_call' THEN CASE WHEN name IS NOT NULL AND name <> '' THEN 'chat ' || name ELSE 'chat' END
            WHEN 'tool_call' THEN CASE WHEN name IS NOT NULL AND name <> '' THEN 'execute_tool ' || name ELSE 'execute_tool' END
            WHEN 'memory_operation' THEN _memory_operation
            ELSE coalesce(nullif(name, ''), type)
        END AS _title
    FROM event_rows
),
event_spans AS (
    SELECT
        _order_at, execution_id AS _run, seq AS _seq, host,
        concat(
            '{"traceId":"', _trace, '","spanId":"', left(md5(execution_id || '/' || seq), 16),
            '","parentSpanId":"', _run_span, '","name":', to_json(_title),
            ',"kind":', CASE WHEN type = 'llm_call' THEN '3' ELSE '1' END,
            ',"startTimeUnixNano":"', CAST(round(started_at * 1e9) AS HUGEINT),
            '","endTimeUnixNano":"', CAST(round((started_at + coalesce(duration, 0.0)) * 1e9) AS HUGEINT),
            '","attributes":[', concat_ws(',',
            CASE type
                WHEN 'llm_call' THEN concat_ws(',',
                    '{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}',
                    '{"key":"openinference.span.kind","value":{"stringValue":"LLM"}}',
                    '{"key":"gen_ai.provider.name","value":{"stringValue":' || to_json(_provider) || '}}',
                    '{"key":"llm.provider","value":{"stringValue":' || to_json(_provider) || '}}',
                    CASE WHEN name <> '' THEN concat_ws(',',
                        '{"key":"gen_ai.request.model","value":{"stringValue":' || to_json(name) || '}}',
                        '{"key":"gen_ai.response.model","value":{"stringValue":'
                            || to_json(coalesce(nullif(_response_model, ''), name)) || '}}',
                        '{"key":"llm.model_name","value":{"stringValue":' || to_json(name) || '}}') END,
                    '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"' || prompt_tokens || '"}}',
                    '{"key":"llm.token_count.prompt","value":{"intValue":"' || prompt_tokens || '"}}',
                    '{"key":"gen_ai.usage.output_tokens","value":{"intValue":"' || completion_tokens || '"}}',
                    '{"key":"llm.token_count.completion","value":{"intValue":"' || completion_tokens || '"}}',
                    '{"key":"llm.token_count.total","value":{"intValue":"' || total_tokens || '"}}',
                    CASE WHEN cost IS NULL
                        THEN '{"key":"kagura.cost.known","value":{"boolValue":false}}'
                        ELSE '{"key":"gen_ai.usage.cost.amount","value":{"doubleValue":' || CAST(cost AS VARCHAR)
                            || '}},{"key":"gen_ai.usage.cost.currency","value":{"stringValue":"USD"}},'
                            || '{"key":"llm.cost.total","value":{"doubleValue":' || CAST(cost AS VARCHAR) || '}}'
                    END)
                WHEN 'tool_call' THEN concat_ws(',',
                    '{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}}',
                    '{"key":"openinference.span.kind","value":{"stringValue":"TOOL"}}',
                    CASE WHEN name <> '' THEN
                        '{"key":"gen_ai.tool.name","value":{"stringValue":' || to_json(name) || '}},'
                        || '{"key":"tool.name","value":{"stringValue":' || to_json(name) || '}}' END,
                    CASE WHEN _tool_call_id <> ''
                        THEN '{"key":"gen_ai.tool.call.id","value":{"stringValue":' || to_json(_tool_call_id) || '}}' END)
                WHEN 'memory_operation' THEN concat_ws(',',
                    '{"key":"gen_ai.operation.name","value":{"stringValue":' || to_json(_memory_operation) || '}}',
                    CASE WHEN name <> ''
                        THEN '{"key":"kagura.memory.operation","value":{"stringValue":' || to_json(name) || '}}' END)
                ELSE concat_ws(',',
                    '{"key":"kagura.event.type","value":{"stringValue":' || to_json(type) || '}}',
                    CASE WHEN name <> ''
                        THEN '{"key":"kagura.event.name","value":{"stringValue":' || to_json(name) || '}}' END)
            END,
            '{"key":"kagura.execution.id","value":{"stringValue":' || to_json(execution_id) || '}}',
            '{"key":"kagura.event.seq","value":{"intValue":"' || seq || '"}}',
            CASE WHEN status IN ('failed', 'error')
                THEN '{"key":"error.type","value":{"stringValue":'
                    || to_json(coalesce(nullif(_error_type, ''), '_OTHER')) || '}}'
                WHEN status IS NOT NULL AND status NOT IN ('completed', 'ok')
                THEN '{"key":"kagura.status","value":{"stringValue":' || to_json(status) || '}}' END
            ),
            '],"status":',
            CASE
                WHEN status NOT IN ('failed', 'error') OR status IS NULL THEN '{}'
                WHEN error IS NULL OR error = '' THEN '{"code":2}'
                ELSE '{"code":2,"message":' || to_json(error) || '}'
            END,
            '}'
        ) AS span
    FROM events_named
)
SELECT host, _seq = -1 AS is_run, span
FROM (
    SELECT * FROM run_spans
    UNION ALL
    SELECT * FROM event_spans
)
ORDER BY _order_at, _run, _seq
