"""HTTP plumbing around the routes: API keys, CORS, OpenAI error envelopes, clients that stop reading."""
