"""t2t_lite.layers: Keras 3 layers (dense, attention, embedding, Transformer blocks).

    from t2t_lite import layers
    embed = layers.TokenEmbedding(vocab_size=100, hidden_size=32)
    block = layers.TransformerEncoderBlock(num_heads=4, filter_size=64)
    y = block(embed(ids))          # the padding mask (ids != 0) travels with Keras masking
"""
from t2t_lite.layers.attention import MultiHeadAttention  # MultiHeadCrossAttention's former name
from t2t_lite.layers.attention import MultiHeadCrossAttention
from t2t_lite.layers.attention import MultiHeadSelfAttention
from t2t_lite.layers.dense import Dense
from t2t_lite.layers.dense import FanInUniform
from t2t_lite.layers.dropout import Dropout
from t2t_lite.layers.dropout import dropout
from t2t_lite.layers.embedding import TokenEmbedding
from t2t_lite.layers.embedding import get_timing_signal_1d
from t2t_lite.layers.positions import RelativePositionBias
from t2t_lite.layers.positions import length_relative_positions
from t2t_lite.layers.positions import random_positions
from t2t_lite.layers.transformer import TransformerDecoderBlock
from t2t_lite.layers.transformer import TransformerEncoderBlock

__all__ = [
    "Dense",
    "Dropout",
    "FanInUniform",
    "MultiHeadAttention",
    "MultiHeadCrossAttention",
    "MultiHeadSelfAttention",
    "RelativePositionBias",
    "TokenEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "dropout",
    "get_timing_signal_1d",
    "length_relative_positions",
    "random_positions",
]
