"""The REST API door for API clients (DRF, under `/api/v1/`).

A thin door: views parse input, authorise through `conversations.api.principals`,
call the conversation services and render with the shared presenters. Its own Django
app (label `apikeys`) owns the API keys, the integrations ("API clients") they belong
to, and which conversations each integration created.
"""
