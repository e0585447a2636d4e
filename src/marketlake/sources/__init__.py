"""Historical and live sources; every adapter returns the canonical Arrow schemas."""
