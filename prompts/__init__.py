"""prompts room."""
