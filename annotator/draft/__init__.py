"""The automatic draft (`ssu-annotate`): pipeline.py (detector + SAM -> SAM2 -> audio gate -> VLM captions),
gating.py (which sources sound, per second), runner.py (local processes or Ray), cli.py."""
