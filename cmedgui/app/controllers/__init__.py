"""Controllers connect models to widgets and run user intents (open, solve, export)."""
