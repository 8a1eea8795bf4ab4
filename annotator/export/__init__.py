"""Exporters of a dataset root: splits, YouTube-VIS, COCO, Hugging Face Parquet, WebDataset, Croissant, card.

Each module reads the root only through `schemas` and writes its files atomically (schemas.atomic).
"""
