"""ALIT Explorer, the web app: layout.py (the page), handlers.py (events), explorer.py (computation
through alit_core's public API), figures.py (pictures and plots)."""
