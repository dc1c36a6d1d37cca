"""pytest plugin of mmiotk (entry point pytest11): fixtures for driver tests."""
