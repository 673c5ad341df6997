"""Markdown, HTML and plots for the version and portfolio reports."""
