"""The fixed shape of every clip in a dataset root (paper, section III.B: 10 s, 30 fps, 512x512)."""

FPS = 30
SIZE = 512
SECONDS = 10
NUM_FRAMES = FPS * SECONDS  # 300
SAMPLE_RATE = 16_000
NUM_SAMPLES = SAMPLE_RATE * SECONDS  # 160 000
SCHEMA_VERSION = 1
