"""The knowledge base: intents with examples and answer templates, FAQ, keyword rules, and the
trained intent model the bot uses."""
