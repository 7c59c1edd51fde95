"""Pretrained image and text encoders, chosen by spec string (see `registry`)."""
from .base import ImageEncoder, ImageFeatures, TextEncoder, l2_normalize
from .registry import (DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER, build_image_encoder, build_text_encoder, weights_digest,
                       image_encoder_names, load_image_encoder, load_text_encoder, register_image_encoder,
                       register_text_encoder, text_encoder_names)

__all__ = ["weights_digest", "ImageEncoder", "ImageFeatures", "TextEncoder", "l2_normalize", "DEFAULT_IMAGE_ENCODER",
           "DEFAULT_TEXT_ENCODER", "build_image_encoder", "build_text_encoder", "load_image_encoder",
           "load_text_encoder", "image_encoder_names",
           "text_encoder_names", "register_image_encoder", "register_text_encoder"]
