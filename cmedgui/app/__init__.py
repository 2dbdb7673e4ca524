"""The desktop window: models hold state and emit signals, widgets draw, controllers wire them."""
