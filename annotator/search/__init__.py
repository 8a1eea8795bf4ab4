"""Region search (paper §V.B.3): find the clips, sources and frames whose captions match a description.

segments.py  what is searchable (one source of one clip under one caption text, with its frame spans), cached
rankers.py   BM25 (offline, no model) and a sentence-embedding ranker (a local or cached model)
engine.py    query -> ranked hits; the one entry point ssu-search and ssu-refine use
preview.py   a contact sheet of the best frames with the region outlined
"""
