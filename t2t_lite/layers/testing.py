"""One shared check that every layer of t2t_lite.layers passes (used by tests/test_layers_*.py).

`run_layer_checks` builds a layer, checks its output shape, that `get_config`/`from_config`
rebuilds it with the same outputs, that it works in a functional model that survives
`model.save("x.keras")` / `keras.models.load_model`, and that it runs under the
`mixed_float16` and `mixed_bfloat16` policies with finite outputs of the policy's dtype.
Models built on these layers can use it too.
"""
import os
import tempfile

import keras
import numpy as np


def _as_tuple(inputs):
  return tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)


def _first(outputs):
  return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def run_layer_checks(layer_cls, init_kwargs, inputs, expected_output_shape, call_kwargs=None,
                     input_dtypes=None, run_saving=True, run_mixed_precision=True, atol=1e-6):
  """Runs the common layer checks and returns the float32 layer it built.

  Args:
    layer_cls: the layer class.
    init_kwargs: dict of constructor arguments.
    inputs: a NumPy array or a tuple of them, passed positionally to the layer.
    expected_output_shape: the expected shape of the (first) output.
    call_kwargs: dict of extra (non-tensor) call arguments.
    input_dtypes: dtype of each input for the functional model (default: the arrays' dtypes).
    run_saving: whether to do the functional model `.keras` round trip.
    run_mixed_precision: whether to run under mixed_float16 and mixed_bfloat16.
    atol: tolerance of the round-trip comparisons.

  Returns:
    The layer (float32 policy) after the checks.
  """
  inputs = _as_tuple(inputs)
  call_kwargs = dict(call_kwargs or {})
  layer = layer_cls(**init_kwargs)
  output = np.asarray(_first(layer(*inputs, **call_kwargs)))
  assert output.shape == tuple(expected_output_shape), (output.shape, expected_output_shape)
  assert np.all(np.isfinite(output))
  assert output.dtype == np.float32, output.dtype
  assert len(layer.weights) > 0 or not layer.built

  # get_config / from_config: an equal config, and the same outputs once weights are copied.
  config = layer.get_config()
  clone = layer_cls.from_config(config)
  assert clone.get_config() == config
  clone(*inputs, **call_kwargs)
  assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(np.asarray(_first(clone(*inputs, **call_kwargs))), output,
                             atol=atol)

  if run_saving:
    dtypes = input_dtypes or [a.dtype for a in inputs]
    model_inputs = [keras.Input(shape=a.shape[1:], dtype=str(dt))
                    for a, dt in zip(inputs, dtypes)]
    model_output = layer(*model_inputs, **call_kwargs)
    assert tuple(model_output.shape[1:]) == tuple(expected_output_shape[1:]), (
        model_output.shape, expected_output_shape)
    model = keras.Model(model_inputs, model_output)
    np.testing.assert_allclose(np.asarray(model(list(inputs))), output, atol=atol)
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "model.keras")
      model.save(path)
      restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(list(inputs))), output, atol=atol)
    restored_layer = restored.layers[-1]
    assert type(restored_layer) is layer_cls

  if run_mixed_precision:
    for policy in ("mixed_float16", "mixed_bfloat16"):
      mixed = layer_cls(**init_kwargs, dtype=policy)
      out = _first(mixed(*inputs, **call_kwargs))
      assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1], (policy,
                                                                                 out.dtype)
      assert np.all(np.isfinite(np.asarray(keras.ops.cast(out, "float32"))))
      for weight in mixed.weights:
        assert keras.backend.standardize_dtype(weight.dtype) in ("float32", "int32", "int64",
                                                                 "uint32", "bool"), (
                                                                     weight.name, weight.dtype)
  return layer
