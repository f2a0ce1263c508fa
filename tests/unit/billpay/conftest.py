"""Unit fixtures for billpay: see tests/unit/conftest.py (moto, tables)."""
