"""Local HubSpot-compatible API server (Starlette on uvicorn) for the demo, tests and benchmarks.

Start it with `python -m fp_hubspot_assets.sandbox` (or `fp-hubspot sandbox`); in tests use
`fp_hubspot_assets.sandbox.testing.running_sandbox`. Inspection routes under /_sandbox need no token."""
