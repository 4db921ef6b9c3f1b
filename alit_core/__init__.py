"""alit_core: from-scratch PyTorch implementations of ALIT, the adaptive-length image tokenizer, and of
KARL, its single-pass successor by the same authors.

Public API (what the app and external code use; `__all__` lists exactly these):
    loading and saving: load_tokenizer, from_official, save_checkpoint, infer_config, fetch_official,
        BUNDLED_MODELS, OFFICIAL_CHECKPOINTS, KARL_CHECKPOINTS
    models and their configurations: ALIT, ALITConfig, VQGANConfig, VAEConfig, PRESETS, get_preset, KARL,
        KARLConfig, KARL_PRESETS
    running them: Tokenizer, ImageTokens, Step, Encoding, CachedRollout, InferenceOptions, KARLTokenizer,
        KARLPass, KARLImageTokens, available_devices, supported_dtypes, faster_precision, HALTING_MODES
    how many tokens an image gets: Criterion, DEFAULT_THRESHOLD, select_iterations, select_batch_iteration
    images in and out: load_image, open_image, square_crop_resize, image_to_tensor, tensor_to_image,
        IMAGE_EXTENSIONS
    analysis: complexity, COMPLEXITY_MEASURES, codec_at_size, latent_attention_maps, attention_segments,
        grid_segments, fg_ari, matched_miou, count_flops, spearman, bootstrap_ci
    datasets (a folder of images into a Parquet file, and back): encode_dataset, DatasetEncodeConfig,
        read_results, DatasetResults
    errors: ALITError, ImageInputError, CheckpointError, DownloadError, ResultsFileError
load_tokenizer and from_official return a KARLTokenizer for KARL files. The method as implemented, the
official code's quirks and the checkpoint layouts: docs/method.md.
"""

from .analysis.attention_maps import latent_attention_maps
from .analysis.complexity import MEASURES as COMPLEXITY_MEASURES
from .analysis.complexity import complexity
from .analysis.compression import codec_at_size
from .analysis.flops import count_flops
from .analysis.segmentation import attention_segments, fg_ari, grid_segments, matched_miou
from .analysis.statistics import bootstrap_ci, spearman
from .datasets.dataset_encoding import DatasetEncodeConfig, encode_dataset
from .datasets.dataset_results import DatasetResults, read_results
from .datasets.image_files import IMAGE_EXTENSIONS
from .errors import ALITError, CheckpointError, DownloadError, ImageInputError, ResultsFileError
from .files.checkpoints import BUNDLED_MODELS, infer_config, save_checkpoint
from .files.image_io import image_to_tensor, load_image, open_image, square_crop_resize, tensor_to_image
from .files.loading import from_official, load_tokenizer
from .files.registry import KARL_CHECKPOINTS, OFFICIAL_CHECKPOINTS, fetch_official
from .model.alit import ALIT
from .model.config import PRESETS, ALITConfig, VAEConfig, VQGANConfig, get_preset
from .model.halting import MODES as HALTING_MODES
from .model.karl import KARL, KARL_PRESETS, KARLConfig
from .running.cached_rollout import CachedRollout
from .running.devices import available_devices, faster_precision, supported_dtypes
from .running.encoding import Encoding
from .running.inference import InferenceOptions
from .running.karl_tokenizer import KARLImageTokens, KARLPass, KARLTokenizer
from .running.rollout import ImageTokens, Step
from .running.selection import DEFAULT_THRESHOLD, Criterion, select_batch_iteration, select_iterations
from .running.tokenizer import Tokenizer

__all__ = [
    "ALIT",
    "BUNDLED_MODELS",
    "COMPLEXITY_MEASURES",
    "DEFAULT_THRESHOLD",
    "HALTING_MODES",
    "IMAGE_EXTENSIONS",
    "KARL",
    "KARL_CHECKPOINTS",
    "KARL_PRESETS",
    "OFFICIAL_CHECKPOINTS",
    "PRESETS",
    "ALITConfig",
    "ALITError",
    "CachedRollout",
    "CheckpointError",
    "Criterion",
    "DatasetEncodeConfig",
    "DatasetResults",
    "DownloadError",
    "Encoding",
    "ImageInputError",
    "ImageTokens",
    "InferenceOptions",
    "KARLConfig",
    "KARLImageTokens",
    "KARLPass",
    "KARLTokenizer",
    "ResultsFileError",
    "Step",
    "Tokenizer",
    "VAEConfig",
    "VQGANConfig",
    "attention_segments",
    "available_devices",
    "bootstrap_ci",
    "codec_at_size",
    "complexity",
    "count_flops",
    "encode_dataset",
    "faster_precision",
    "fetch_official",
    "fg_ari",
    "from_official",
    "get_preset",
    "grid_segments",
    "image_to_tensor",
    "infer_config",
    "latent_attention_maps",
    "load_image",
    "load_tokenizer",
    "matched_miou",
    "open_image",
    "read_results",
    "save_checkpoint",
    "select_batch_iteration",
    "select_iterations",
    "spearman",
    "square_crop_resize",
    "supported_dtypes",
    "tensor_to_image",
]
