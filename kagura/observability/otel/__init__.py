"""OpenTelemetry in and out: OTLP export, live forwarding, an OTLP receiver.

`mapping` names the gen_ai.* and OpenInference attributes and turns ids both
ways; `export` writes runs as OTLP spans (JSON Lines files, OTLP/HTTP pushes);
`ingest` lands spans of any framework in a store; `receiver` serves
`POST /v1/traces`; `forward` sends finished runs to a collector as they are
recorded. Nothing here is imported by `import kagura`: protobuf and the OTLP
messages (the `otel` extra) load only when one of these modules is used.
"""
