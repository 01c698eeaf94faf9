"""Small language models trained here: RL under staleness, async lag and engine mismatch.

Modules: ``tokenizer`` (characters), ``tasks`` (verifiable rewards, variable-length answers),
``model`` (a small causal transformer with a KV cache), ``sampling`` (KV-cached generation with
an optional mismatched sampler engine), ``sft`` (supervised warm start, cached by config hash),
``rl`` (the GRPO-style loop with staleness N and lag L), ``measure`` (measurement-only mode),
``hf`` (optional Hugging Face path, imported lazily), ``cell`` (the sweep cell kind "lm") and
``report`` (the comparison table). Everything needs torch; nothing here is imported by
``vespo_theory``. See docs/lm.md for the protocol and results.
"""
