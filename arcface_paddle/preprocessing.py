"""Preprocessing facts for recognition, defined once and imported everywhere.

Training data, validation, export (``model.yaml``), the predictor and the det+rec pipeline all read
these constants; nothing else hard-codes 112, 127.5 or the landmark template.
"""
from __future__ import annotations

import numpy as np

REC_IMAGE_SIZE = 112                     # aligned face crops are 112×112
REC_COLOR_ORDER = "RGB"                  # our datasets and models take RGB
TRAIN_MEAN = 127.5                       # (x - 127.5) / 127.5, as the reference arcface_paddle
TRAIN_STD = 127.5

# InsightFace / ArcFace 5-point template for a 112×112 crop, in pixels:
# left eye, right eye, nose tip, left mouth corner, right mouth corner (left/right as seen in the image).
ARCFACE_TEMPLATE_5 = np.array(
    [[38.2946, 51.6963],
     [73.5318, 51.5014],
     [56.0252, 71.7366],
     [41.5493, 92.3655],
     [70.7299, 92.2041]], dtype=np.float32)

# BlazeFace gives eyes, nose tip and mouth centre (plus ear tragions, which the template lacks):
# the 4-point template uses the mouth corners' midpoint as mouth centre.
ARCFACE_TEMPLATE_4 = np.concatenate(
    [ARCFACE_TEMPLATE_5[:3], ARCFACE_TEMPLATE_5[3:5].mean(axis=0, keepdims=True)], axis=0)
