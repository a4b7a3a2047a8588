"""Callbacks SMS providers make: delivery receipts and customers' replies."""
