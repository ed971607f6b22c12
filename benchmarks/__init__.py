"""Benchmarks: ccdgui against its peers (numpy, ccdproc) on the same work, in the same run."""
