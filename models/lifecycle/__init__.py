"""The LLM's lifecycle: GGUF facts, quantised variants in the MLflow registry, promotion."""
