"""`loopynet serve MODEL [MODEL ...]`: an HTTP service (FastAPI + uvicorn) for model folders, with a page
at `/`, micro-batched inference in a worker thread, limits with JSON errors and a JSON access log."""
