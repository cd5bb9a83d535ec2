"""Operations and insight: Prometheus metrics, structured logs, health checks, cost
budgets and the staff dashboard.

A pure observer: the core and the agent never import it. `OpsConfig.ready` connects
`recording.record_turn_finished`, `metrics.record_tool_call`, `metrics.record_budget_stop`
and `logcontext.bind_log_context` to the hooks of `conversations.observers`; the
websocket doors call `metrics.websocket_opened/closed`. Everything else here reads the
database and never changes how a turn runs. (Budget limits, which do change how a turn
runs, are the agent's: `conversations.agent.budgets`.)
"""
