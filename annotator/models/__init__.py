"""Annotation model loaders: settings (settings.py), CLI flags (flags.py), and the front door (loaders.py) over
SAM (sam_image.py), SAM2 video propagation (sam2_video.py) and the Hugging Face models (hf.py)."""
