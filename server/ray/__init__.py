"""The same app on Ray Serve: engine and predictor replicas behind our FastAPI app."""
