"""Live mode: the router as an HTTP service, a simulated OpenAI-compatible upstream, a fault proxy,
live drills and shadow replays across real process and network boundaries."""
