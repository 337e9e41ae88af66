"""Everything that computes: the LLM engine, the model catalog, predictors, the embedder."""
