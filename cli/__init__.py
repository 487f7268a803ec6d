"""nerkit's command line, installed as the ``nerkit_cli`` package (``nerkit`` command)."""
