"""The one serving path: a parsed request of any dialect becomes engine work and back."""
