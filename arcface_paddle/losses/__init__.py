"""Recognition losses: combined angular margins and (model-parallel) PartialFC."""
from arcface_paddle.losses.distributed import reshard_rows, shard_range  # noqa: F401
from arcface_paddle.losses.margin import (  # noqa: F401
                     MARGIN_PRESETS,
                     CombinedMarginLoss,
                     apply_margin,
                     build_margin_loss,
                     margin_softmax_loss,
                     margin_target_cosine,
                     softmax_cross_entropy,
)
from arcface_paddle.losses.partial_fc import PartialFC  # noqa: F401
