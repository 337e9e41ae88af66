"""HTTP routes: each translates a request and delegates to models/."""
