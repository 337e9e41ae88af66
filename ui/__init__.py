"""ui room."""
