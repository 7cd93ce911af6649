-- agent_names: every agent that has recorded a run, with its run count and last run
-- grain: one row per agent
-- params: none
-- reads: executions
SELECT agent_name, count(*) AS runs, max(started_at) AS last_started_at
FROM executions
GROUP BY agent_name
ORDER BY agent_name
