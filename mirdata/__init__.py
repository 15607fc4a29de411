"""mirdata: rebuild, validate, release and train on MIR, a benchmark of multi-image interleaved reasoning."""

__version__ = "0.1.0"
