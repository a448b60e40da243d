"""The assistant and the front ends: settings, LLM client, the LLM tools, agent, conversations, narrative,
signal extraction, daily draft, scheduler, terminal chat and the Slack bot. Imports ``tools`` and ``db``."""
