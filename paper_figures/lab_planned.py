"""The paper's empirical claims S1-S8, and the place for lab figures that have no study block.

arXiv 2602.10693 trains a 30B model (Figs. 3-12, Tables 1-4, and two README figures). The
toolkit's analogues come from the small-LM lab's study (``simulations/lm/study.py``; tables in
``docs/lm_study/``, written by ``python scripts/lm_study.py BLOCK --run --jobs 2``): each has
its own module (``fig03_reward_by_staleness`` ... ``table4_second_domain``,
``readme_n4_reward``, ``readme_async_grid``), available when its block's tables exist.
:data:`SPECS` holds planned figures (none now).

:data:`S_CLAIMS` lists the claims with the study block (``configs/study/<block>.json``) that
tests each; ``vespo report`` prints them with the verdicts of ``verdicts.csv``
(:func:`verdicts`), or "not run yet" and :data:`STUDY_COMMAND` while that file is absent.
"""

from __future__ import annotations

import csv

from paper_figures import _lab

#: The command that runs every block of the study and writes its tables and verdicts.
STUDY_COMMAND = _lab.ALL_COMMAND

#: The paper's empirical claims S1-S8 (arXiv 2602.10693 §4 and its appendix), what each says in
#: short, where the paper shows it, and the study block that tests it at small scale
#: (``configs/study/<block>.json``; S2 uses the runs of s1).
S_CLAIMS: dict[str, dict[str, str]] = {
    "S1": {"statement": "across staleness N = 4 ... 64, VESPO's reward curves stay stable while "
           "GRPO saturates early and GSPO and SAPO degrade or collapse",
           "paper": "Table 2, Figs. 3-4", "block": "s1", "config": "configs/study/s1.json"},
    "S2": {"statement": "the baselines' failure signals: GRPO's entropy collapse, GSPO's "
           "response-length spike before collapse, SAPO's under-suppressed A < 0",
           "paper": "Figs. 8-10", "block": "s1", "config": "configs/study/s1.json"},
    "S3": {"statement": "length normalisation hurts: the kernel at W^(1/T) or W^(1/sqrt T) is "
           "unstable (KL and gradient-norm spikes) where plain VESPO is stable",
           "paper": "Fig. 6", "block": "s3", "config": "configs/study/s3.json"},
    "S4": {"statement": "the asymmetry matters: (2,3) for both signs is unstable, (3,2) for both "
           "learns slowly", "paper": "Fig. 7", "block": "s4",
           "config": "configs/study/s4.json"},
    "S5": {"statement": "train-inference mismatch: VESPO alone matches GRPO with routing replay, "
           "VESPO with routing replay is best", "paper": "Fig. 5", "block": "s5",
           "config": "configs/study/s5.json"},
    "S6": {"statement": "against TOPR, CISPO and BAPO at N = 8, VESPO scores highest and stays "
           "stable", "paper": "Table 3, Fig. 11", "block": "s6",
           "config": "configs/study/s6.json"},
    "S7": {"statement": "the same (k, lam) transfer to a second task domain (code in the paper)",
           "paper": "Table 4, Fig. 12", "block": "s7", "config": "configs/study/s7.json"},
    "S8": {"statement": "at three model sizes (N = 8) VESPO is best or tied",
           "paper": "Table 1", "block": "s8", "config": "configs/study/s8.json"},
}  # fmt: skip


def planned_command(claim: str) -> str:
    """The command that produces claim ``claim``'s (S1-S8) verdict: the whole study (the
    verdicts are written from every block's paired table)."""
    if claim not in S_CLAIMS:
        raise KeyError(f"claim: one of {', '.join(S_CLAIMS)}, got {claim!r}")
    return STUDY_COMMAND


def verdicts(tables=_lab.DEFAULT_TABLES) -> dict[str, dict] | None:
    """claim -> its row of ``verdicts.csv`` (verdict, favourable, primary, seeds, exploratory,
    largest_effect ...) from the study's tables folder; None when the file does not exist."""
    path = _lab.tables_dir(tables) / "verdicts.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        return {r["claim"]: r for r in csv.DictReader(fh) if r.get("claim")}


#: Planned lab figures (registered, never drawn): none left. Every lab figure has its own
#: module and study block; a future one whose block does not exist yet goes here with
#: ``planned=True`` and a ``data_command`` that names its (future) config.
SPECS: tuple = ()

__all__ = ["SPECS", "STUDY_COMMAND", "S_CLAIMS", "planned_command", "verdicts"]
