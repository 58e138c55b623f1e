"""Django admin for the app: one module per model family."""
