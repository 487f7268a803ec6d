"""Loss functions by name. See ``registry`` for the contract and docs/losses.md for the maths.

Importing this package imports every loss module, which registers it.
"""

from nerkit.losses.registry import (
    LOSSES,
    LossSpec,
    available_losses,
    build_loss,
    get_loss_spec,
    register_loss,
    supports_partial_labels,
    validate_loss_params,
)
from nerkit.losses.hooks import LossHooks, hooks, loss_config
from nerkit.losses import ce  # noqa: F401  (registers "ce")
from nerkit.losses import weighted_ce  # noqa: F401  (registers "weighted-ce")
from nerkit.losses import truncated  # noqa: F401  (registers "hard-truncated", "soft-truncated")
from nerkit.losses import focal  # noqa: F401  (registers "focal")
from nerkit.losses import logit_adjusted  # noqa: F401  (registers "logit-adjusted")
from nerkit.losses import dice  # noqa: F401  (registers "dice")
from nerkit.losses import am_softmax  # noqa: F401  (registers "am-softmax")
from nerkit.losses import zlpr  # noqa: F401  (registers "zlpr")
from nerkit.losses import bce  # noqa: F401  (registers "bce")
from nerkit.losses import flooding  # noqa: F401  (registers "flooding")
from nerkit.losses.am_softmax import CosineClassifier
from nerkit.losses.base import LossModule, TokenLoss
from nerkit.losses.functional import IGNORE_INDEX, InvalidLabelError
from nerkit.losses.priors import class_weights, log_prior
from nerkit.losses.zlpr import SPARSE_AUTO_THRESHOLD

__all__ = [
    "LOSSES",
    "LossHooks",
    "hooks",
    "loss_config",
    "validate_loss_params",
    "CosineClassifier",
    "IGNORE_INDEX",
    "InvalidLabelError",
    "LossModule",
    "LossSpec",
    "SPARSE_AUTO_THRESHOLD",
    "TokenLoss",
    "available_losses",
    "build_loss",
    "class_weights",
    "get_loss_spec",
    "log_prior",
    "register_loss",
    "supports_partial_labels",
]
