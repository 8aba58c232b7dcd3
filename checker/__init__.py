"""fromscratch: audits "from scratch" claims about AI foundation models."""

__version__ = "0.1.0"
