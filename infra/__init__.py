"""sidstream: infra."""
