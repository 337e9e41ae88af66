"""Wire models of every dialect the server speaks: requests and responses."""
