"""Local HubSpot-compatible API server (Starlette on uvicorn) for the demo, tests and benchmarks.

Start it with `python -m hubspot_sandbox` (or `hubspot-sandbox`); in tests use
`hubspot_sandbox.testing.running_sandbox`. Inspection routes under /_sandbox need no token."""
