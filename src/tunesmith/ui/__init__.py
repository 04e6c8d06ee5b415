"""``tunesmith ui``: a web dashboard over run directories, a playground on the serving engine, and monitoring."""
