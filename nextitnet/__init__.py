"""UAF on NextItNet: dilated-CNN recommender with user-specific adaptive fine-tuning."""

from pitune_tf import _env  # noqa: F401  (Keras 2 before tensorflow)
