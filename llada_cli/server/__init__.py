"""`llada serve`: an OpenAI-compatible HTTP server over runs (docs/serve.md), on the `serve` extra."""
