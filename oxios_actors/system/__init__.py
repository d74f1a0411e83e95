"""System services: configuration, access tokens, resources."""
