"""sidstream: streams."""
