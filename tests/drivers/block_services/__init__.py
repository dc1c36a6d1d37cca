"""Tests of the block FIFO server, the NBD export and the file-backed disk."""
