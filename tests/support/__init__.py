"""Test support: a small ERP database the real connectors read, and config builders."""
