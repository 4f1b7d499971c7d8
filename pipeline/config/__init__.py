"""Configuration: the one package that reads, merges and checks params.

* :mod:`pipeline.config.yaml_file`: the one YAML reader (``yaml.safe_load``, a mapping at the
  top level, one-line errors naming the file); nothing in params is evaluated as code.
* :mod:`pipeline.config.merge`: the one merge (:func:`deep_merge`).
* :mod:`pipeline.config.schema`: the checker and the one "did you mean" (``did_you_mean``).
* :mod:`pipeline.config.params_schema`: the schema of every params section (``train`` and
  ``so3`` built from the variant registry's own schemas).
* :mod:`pipeline.config.train`: the trainer's settings (``optim:``) and its schedule.
* :mod:`pipeline.config.edit`: params.yaml edited in place, comments kept (``geosgm profile``).
"""

from pipeline.config.merge import deep_merge
from pipeline.config.yaml_file import ParamsFileError, read_yaml_mapping

__all__ = ["ParamsFileError", "deep_merge", "read_yaml_mapping"]
