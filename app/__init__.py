"""ALIT Explorer, the web app: layout.py (the page), handlers.py (events), explorer.py (computation
through alit_core's public API), figures.py (pictures and plots), components.py (the upload box),
benchmark.py (latency through gradio_client; not imported by the app)."""
