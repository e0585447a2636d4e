"""``marketlake serve``: a read-only JSON API, Prometheus metrics and a live dashboard.

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client); nothing here is imported
by the other commands. :func:`marketlake.serve.app.create_app` builds the application.
"""
