"""cocotb test modules that belong to the tooling (not to the test suite), e.g. the waveform capture."""
