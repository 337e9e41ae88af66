"""Classical predictors (iris, income, churn): data, schemas, training, loading, prediction log."""
