"""Media decoding: images (Pillow) and videos (PyAV), with errors that name the record."""
from .image import decode_image, load_image, random_view, to_rgb
from .video import DEFAULT_FRAMES, extract_audio, sample_frames, uniform_positions, video_info

__all__ = ["DEFAULT_FRAMES", "decode_image", "load_image", "random_view", "to_rgb", "extract_audio", "sample_frames", "uniform_positions", "video_info"]
