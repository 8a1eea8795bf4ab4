"""The Hugging Face vocabulary shared by the Parquet export (hf.py) and the dataset card (card.py).

A leaf module: it imports neither, so both can use the split names, the `configs:` and `dataset_info:` front
matter, the features and the short README without importing each other.

Media columns: `video` and `audio` are stored as `{bytes, path}` structs, the Arrow layout of datasets'
`Video()`/`Audio()` features. Whether the README declares them as those features or as plain
`{bytes: binary, path: string}` structs depends on torchcodec (the only decoder of those features) being
importable where the export runs: declared as features on a machine without torchcodec, `load_dataset` would
load but every row access would fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annotator.export.common import Selection
from schemas.constants import SAMPLE_RATE

TASK_CATEGORIES = ["image-segmentation", "video-text-to-text"]
TAGS = ["audio-visual", "sound-source-localization", "audio-visual-segmentation", "dense-video-captioning",
        "ra-ssu"]
# The root's split names -> the names `datasets` users expect (datasets.Split.VALIDATION is "validation").
HF_SPLIT = {"train": "train", "val": "validation", "test": "test"}
HF_ORDER = ["train", "validation", "test"]
DATA = "data"


def hf_split(split: str) -> str:
    return HF_SPLIT.get(split, split)


def hf_license(lic: str | None) -> str:
    """The Hub wants lower-case SPDX-like ids (cc-by-4.0, cc0-1.0, apache-2.0); unknown -> 'other'."""
    return lic.strip().lower() if lic and lic.strip() else "other"


def media_decoder() -> str | None:
    """'torchcodec <version>' when datasets can decode Video()/Audio() here, else None."""
    try:
        import torchcodec  # loads the FFmpeg libraries: raises when they are missing
    except Exception:  # ImportError, or RuntimeError/OSError from a torchcodec without FFmpeg
        return None
    return f"torchcodec {getattr(torchcodec, '__version__', '?')}"


def features(media_features: bool) -> Any:
    """The datasets.Features of one row (see hf.py for the columns)."""
    import datasets as ds

    rle = {"size": ds.List(ds.Value("int64")), "counts": ds.Value("string")}
    raw = {"bytes": ds.Value("binary"), "path": ds.Value("string")}
    source = {"id": ds.Value("int64"), "category": ds.Value("string"), "name": ds.Value("string"),
              "masks": ds.List(rle), "captions": ds.List(ds.Value("string")),
              "scores": ds.List(ds.Value("float64"))}  # a drafting model's confidence per frame, or null
    return ds.Features({
        "clip_id": ds.Value("string"), "category": ds.Value("string"), "origin": ds.Value("string"),
        "keywords": ds.List(ds.Value("string")), "youtube_id": ds.Value("string"),
        "start_seconds": ds.Value("float64"), "status": ds.Value("string"),
        "video": ds.Video() if media_features else raw,
        "audio": ds.Audio(sampling_rate=SAMPLE_RATE) if media_features else raw,
        "captions": ds.List(ds.Value("string")), "semantic_masks": ds.List(rle),
        "sources": ds.List(source), "annotation": ds.Value("string"),
    })


def shard_files(out: Path) -> list[Path]:
    return sorted(p for p in (out / DATA).glob("*-*-of-*.parquet") if not p.name.startswith("."))


def hf_splits(out: Path) -> list[str]:
    """HF split names that have Parquet shards under OUT/data (train, validation, test order)."""
    names = {p.name.split("-")[0] for p in shard_files(out)}
    return sorted(names, key=lambda s: (HF_ORDER.index(s) if s in HF_ORDER else len(HF_ORDER), s))


def configs(splits: list[str]) -> list[dict[str, Any]]:
    """The README `configs:` entry that tells `datasets` where each split's shards are."""
    return [{"config_name": "default",
             "data_files": [{"split": s, "path": f"{DATA}/{s}-*.parquet"} for s in splits]}]


def dataset_info(out: Path) -> dict[str, Any] | None:
    """The README `dataset_info:` (features as written in the shards, examples per split), or None."""
    import datasets as ds
    import pyarrow.parquet as pq

    files = shard_files(out)
    if not files:
        return None
    feats = ds.Features.from_arrow_schema(pq.read_schema(files[0]))
    rows: dict[str, list[int]] = {}  # split -> [examples, uncompressed bytes]
    for p in files:
        meta = pq.ParquetFile(p).metadata
        got = rows.setdefault(p.name.split("-")[0], [0, 0])
        got[0] += meta.num_rows
        got[1] += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return {"features": feats._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": rows[s][1], "num_examples": rows[s][0]} for s in hf_splits(out)],
            "download_size": sum(p.stat().st_size for p in files),
            "dataset_size": sum(b for _, b in rows.values())}


def front_matter(out: Path) -> dict[str, Any]:
    """`configs` and `dataset_info` for DatasetCardData when OUT/data holds shards, else nothing."""
    splits = hf_splits(out)
    if not splits:
        return {}
    return {"configs": configs(splits), "dataset_info": dataset_info(out)}


def minimal_card(sel: Selection, out: Path) -> str:
    """A short README with `configs:` and `dataset_info:` for the Parquet export before a full card exists."""
    from huggingface_hub import DatasetCard, DatasetCardData

    m = sel.root.manifest
    data = DatasetCardData(pretty_name=m.name, license=hf_license(m.license), task_categories=TASK_CATEGORIES,
                           tags=TAGS, **front_matter(out))
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n# {m.name}\n\nRun `ssu-export card` for the full "
                           "dataset card.\n"))
