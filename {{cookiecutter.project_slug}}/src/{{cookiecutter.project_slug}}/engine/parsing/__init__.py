"""Request parsing: request bodies, and OpenAI messages and items turned into what Haystack takes."""
