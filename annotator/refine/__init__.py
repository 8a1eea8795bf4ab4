"""ssu-refine: the web app where refiners fix masks and captions (see docs/refine.md)."""
