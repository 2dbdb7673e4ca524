"""Widgets draw what controllers hand them and emit what the user asks for; they hold no state of record."""
