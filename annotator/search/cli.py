"""ssu-search: rank (clip, source, frames) of a dataset root, or of a model's predictions, by a description."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from schemas.cli_util import file_path, folder_path, new_app, run_cli

app = new_app("Find the clips, sources and frames whose region captions match a description (paper §V.B.3).\n\n"
              "Example: ssu-search data/f-music \"violin on the left\" --top 10 --split test --preview sheet.png")


@app.command()
def search(
    root: Path = typer.Argument(..., help="dataset root", parser=folder_path),
    query: str = typer.Argument(..., help="what to find, e.g. \"a white dog barking on the left\""),
    top: int = typer.Option(20, "--top", min=1, max=10_000, help="how many hits to show"),
    split: str | None = typer.Option(None, "--split", help="search only this split (train, val, test)"),
    predictions: Path | None = typer.Option(
        None, "--predictions", parser=folder_path,
        help="search a model's predictions (a folder of annotation JSON files, e.g. ssu-eval's) instead of the "
             "annotations"),
    embedder: str | None = typer.Option(None, "--embedder", help="rank with a sentence-embedding model (local "
                                        "folder or hub id) instead of BM25"),
    offline: bool = typer.Option(False, "--offline", help="never touch the network (also HF_HUB_OFFLINE=1)"),
    as_json: bool = typer.Option(False, "--json", help="print the hits as JSON instead of a table"),
    preview: Path | None = typer.Option(
        None, "--preview", parser=file_path,
        help="also write a contact sheet PNG of the hits' frames with the region outlined"),
    preview_hits: int = typer.Option(8, "--preview-hits", min=1, max=64, help="hits on the contact sheet"),
) -> None:
    """Rank every (clip, sound source, caption) of ROOT by how well the caption matches QUERY.

    A hit lists all frames where that source carries that caption. BM25 needs no model; --embedder ranks by
    cosine similarity of sentence embeddings. The index is cached and refreshed when annotations change.

    Example: ssu-search /tmp/r "the red triangle at the top is whistling" --top 5 --json
    """
    from annotator.search.engine import Searcher
    from annotator.search.rankers import check_query
    from schemas.errors import UserError
    from schemas.root import DatasetRoot

    check_query(query)  # before the index is built: a bad query costs nothing
    r = DatasetRoot.open(root)
    searcher = Searcher(r, predictions=predictions, split=split, embedder=embedder, offline=offline)
    result = searcher.search(query, top=top)
    if as_json:
        typer.echo(json.dumps({"query": query, "ranker": result.ranker, "searched": result.searched,
                               "hits": [h.to_json() for h in result.hits]}, indent=2))
    else:
        _print_table(query, result)
    if preview is not None:
        from annotator.search.preview import write_contact_sheet

        if not result.hits:
            raise UserError(f"--preview {preview}: no hits to show; try other words")
        write_contact_sheet(result.hits[:preview_hits], r, searcher.corpus, preview)
        typer.echo(f"wrote {preview}", err=as_json)


def _print_table(query: str, result) -> None:  # noqa: ANN001 - SearchResult, imported lazily
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{query!r}: {len(result.hits)} hits from {result.searched} segments of {result.clips} clips "
                    f"({result.ranker})")
    for col in ("#", "clip", "source", "frames", "caption", "score"):
        t.add_column(col, overflow="fold")
    for h in result.hits:
        t.add_row(str(h.rank), h.segment.clip_id, f"{h.segment.source_id} {h.segment.category}", h.spans_text(),
                  h.segment.text, f"{h.score:.3f}")
    Console(width=160).print(t)
    if not result.hits:
        typer.echo("no hits: no caption shares a word with the query", err=True)


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
