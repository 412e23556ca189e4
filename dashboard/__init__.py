"""The llmtrace Streamlit dashboard (``llmtrace dashboard``); run ``streamlit_app.py``."""
