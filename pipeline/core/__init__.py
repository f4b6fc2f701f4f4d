"""The shared core: dataset names, site configuration, the OSF blackboard, trailers, the stage contract,
exit codes, errors, file-system and database helpers. Imports nothing else from ``pipeline``."""
