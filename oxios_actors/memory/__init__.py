"""Memory with keyword and semantic search."""
