"""Client adapters: what the service does differently for one kind of client (Open WebUI), and sources."""
