"""The HTTP API (Litestar on uvicorn): see docs/adr/0030-http-framework.md."""
