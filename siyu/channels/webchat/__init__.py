"""Web chat: the customer-facing chat page, its embed snippet, identification and live replies."""
