"""Media defaults (no decoding library imported: the command line reads them at start)."""

DEFAULT_FRAMES = 8  # frames sampled from a video or live clip, wherever a caller does not say
