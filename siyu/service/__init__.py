"""The service desk: conversations, the bot, hand-off to people, routing and satisfaction."""
