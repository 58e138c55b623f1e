"""Signal receivers the app connects in ``AppConfig.ready``."""


def connect() -> None:
    """Connect the app's receivers (drip-sequence enrollment on signup is added here)."""
