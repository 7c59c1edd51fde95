"""Pretrained image and text encoders, chosen by spec string (see `registry`)."""
from ..lazy import exports

_WHERE = {
    "base": ['ImageEncoder', 'ImageFeatures', 'TextEncoder', 'l2_normalize'],
    "config": ['DEFAULT_IMAGE_ENCODER', 'DEFAULT_TEXT_ENCODER', 'DEFAULT_RUNTIME', 'RUNTIMES'],
    "ngrams": ['CharNgramEncoder', 'fold'],
    "registry": ['build_image_encoder', 'build_text_encoder', 'weights_digest', 'image_encoder_names',
                 'load_image_encoder', 'load_text_encoder', 'register_image_encoder', 'register_text_encoder',
                 'runtime_image_encoder', 'text_encoder_names'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
