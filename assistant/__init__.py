"""The assistant: settings, LLM client, agent loop and conversation."""
