"""Plug-ins for the RL frameworks people train with (docs/integrations.md).

* :mod:`vespo_theory.integrations.trl`: any registered rule as a TRL ``GRPOTrainer`` loss
  (``RuleGRPOTrainer``) and a ``TrainerCallback`` logging weight diagnostics
  (``WeightDiagnosticsCallback``). Extra ``[trl]``.
* :mod:`vespo_theory.integrations.verl`: every registered rule in veRL's policy-loss registry
  (``register_rules``). Extra ``[verl]``.

Both import their framework lazily (inside functions, or at first use of a name that needs it),
so importing ``vespo_theory`` or these modules never needs trl, transformers or verl.
"""
