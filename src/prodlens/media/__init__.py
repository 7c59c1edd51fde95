"""Media decoding: images (Pillow) and videos (PyAV), with errors that name the record."""
from ..lazy import exports

_WHERE = {
    "image": ['decode_image', 'load_image', 'random_view', 'to_rgb'],
    "config": ['DEFAULT_FRAMES'],
    "video": ['extract_audio', 'sample_frames', 'uniform_positions', 'video_info'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
