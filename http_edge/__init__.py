"""The aiohttp edge: REST, SSE and WebSocket calls turned into actor asks and log reads."""
