"""Operations and insight: Prometheus metrics, structured logs, health checks, cost
budgets and the staff dashboard.

The engine reports into this package through a few named hooks
(`recording.record_turn_finished`, `metrics.record_tool_call`, `budgets.budget_enforce`,
`logcontext.bind_log_context`, and `metrics.websocket_opened/closed` for the websocket
door); everything else here reads the database and never changes how a turn runs.
"""
