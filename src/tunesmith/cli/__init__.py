"""The ``tunesmith`` command line.

Libraries' own tqdm bars (transformers' per-tensor "Converting and de-quantizing GGUF tensors" bar, which
ignores its progress-bar switch) would break into our rich display and the dashboard's job logs. tqdm reads
``TQDM_*`` settings once, when it is first imported, so this is set before any command imports it; export
``TQDM_DISABLE=`` (empty) to see them.
"""

import os

os.environ.setdefault("TQDM_DISABLE", "1")
