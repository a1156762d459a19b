"""sidstream: models."""
