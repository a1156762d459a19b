"""sidstream: export."""
