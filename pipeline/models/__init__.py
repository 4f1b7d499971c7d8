"""Score networks (MLP with time input, tangent projection) and parameter EMA."""

from pipeline.models.ema import EMA
from pipeline.models.mlp import MLP, MLPConfig, TangentScoreModel, build_score_model

__all__ = ["EMA", "MLP", "MLPConfig", "TangentScoreModel", "build_score_model"]
