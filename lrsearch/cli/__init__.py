"""The `lrsearch` command line: `main` (the parser, the one place that maps errors to
exit statuses) and `commands` (one function a command).
"""
