"""Release: the Hugging Face dataset (parquet + card), the push to the Hub, and the preview page."""

from mirdata.release.dataset import FEATURES, release_dataset
from mirdata.release.layout import SPLITS, ReleaseSummary, config_data_files
from mirdata.release.preview import render_preview, write_preview
from mirdata.release.push import push_dataset

__all__ = ["FEATURES", "SPLITS", "ReleaseSummary", "config_data_files", "push_dataset", "release_dataset",
           "render_preview", "write_preview"]
