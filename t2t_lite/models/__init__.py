"""t2t_lite.models: the registered models and the hparams sets that go with them.

Importing this package registers every built-in model and hparams set:

    import t2t_lite.models
    model = registry.model("transformer")(registry.hparams("transformer_tiny"), problem_hparams)

Models: basic_fc_relu, transformer, transformer_encoder. The loss every model trains with is
`t2t_lite.models.losses.model_loss`.
"""
from t2t_lite import common_hparams  # noqa: F401  (registers basic_params1)
from t2t_lite.models import losses  # noqa: F401
from t2t_lite.models.base import T2TModel  # noqa: F401
from t2t_lite.models.basic import BasicFcRelu  # noqa: F401
from t2t_lite.models.transformer import Transformer  # noqa: F401
from t2t_lite.models.transformer_encoder import TransformerEncoder  # noqa: F401

__all__ = ["T2TModel", "BasicFcRelu", "Transformer", "TransformerEncoder", "losses",
           "common_hparams"]
