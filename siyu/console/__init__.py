"""The web console: server-rendered pages for operators, agents and analysts."""
