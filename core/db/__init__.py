"""Database backends of the gateway (thin subclasses of Django's)."""
