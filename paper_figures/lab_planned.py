"""The paper's figures and tables that need the small-LM lab's result tables (not there yet).

arXiv 2602.10693 trains a 30B model (Figs. 3-12, Tables 1-4, and two README figures); the
toolkit's analogues come from the small-LM lab's committed result tables, which the paper
experiments work will produce. Until then each is registered here with ``data_available()``
False and the command that would produce its data, so ``vespo figures all`` lists it as missing
by name and nothing is ever drawn from invented data. The commands are **planned** (their
config files do not exist yet): they name the claim (S1-S8) each config will reproduce.

When a table lands, its figure gets its own module (``fig03_reward.py`` ...) with a
``FIGURE`` whose ``available`` checks the table's file, and its entry here is removed.
"""

from __future__ import annotations

from paper_figures import FigureSpec

#: The paper's empirical claims S1-S8 (arXiv 2602.10693 §4 and its appendix), what each says in
#: short, where the paper shows it, and the lab config that will test it at small scale (planned:
#: the configs are not written yet). ``vespo report`` prints this table with "not run yet".
S_CLAIMS: dict[str, dict[str, str]] = {
    "S1": {"statement": "across staleness N = 4 ... 64, VESPO's reward curves stay stable while "
           "GRPO saturates early and GSPO and SAPO degrade or collapse",
           "paper": "Table 2, Figs. 3-4", "config": "lm_s1.json"},
    "S2": {"statement": "the baselines' failure signals: GRPO's entropy collapse, GSPO's "
           "response-length spike before collapse, SAPO's under-suppressed A < 0",
           "paper": "Figs. 8-10", "config": "lm_s2.json"},
    "S3": {"statement": "length normalisation hurts: the kernel at W^(1/T) or W^(1/sqrt T) is "
           "unstable (KL and gradient-norm spikes) where plain VESPO is stable",
           "paper": "Fig. 6", "config": "lm_s3.json"},
    "S4": {"statement": "the asymmetry matters: (2,3) for both signs is unstable, (3,2) for both "
           "learns slowly", "paper": "Fig. 7", "config": "lm_s4.json"},
    "S5": {"statement": "train-inference mismatch: VESPO alone matches GRPO with routing replay, "
           "VESPO with routing replay is best", "paper": "Fig. 5", "config": "lm_s5.json"},
    "S6": {"statement": "against TOPR, CISPO and BAPO at N = 8, VESPO scores highest and stays "
           "stable", "paper": "Table 3, Fig. 11", "config": "lm_s6.json"},
    "S7": {"statement": "the same (k, lam) transfer to a second task domain (code in the paper)",
           "paper": "Table 4, Fig. 12", "config": "lm_s7.json"},
    "S8": {"statement": "at three model sizes (N = 8) VESPO is best or tied",
           "paper": "Table 1", "config": "lm_s8.json"},
}  # fmt: skip


def planned_command(claim: str) -> str:
    """The command that will produce claim ``claim``'s (S1-S8) lab results (planned)."""
    return f"vespo sweep configs/{S_CLAIMS[claim]['config']}"


def _not_yet() -> bool:
    return False


def _planned(name, paper, title, claim, config, kind="figure"):
    return FigureSpec(
        name=name,
        title=title,
        paper=paper,
        kind=kind,
        caption=(
            f"{title} (arXiv 2602.10693 {paper}; claim {claim}): needs the small-LM lab's "
            "result tables, which do not exist yet."
        ),
        data_command=f"vespo sweep configs/{config}",
        planned=True,
        claims=(claim,),
        available=_not_yet,
    )


SPECS = (
    _planned("fig03_reward_by_staleness", "Fig. 3",
             "held-out success and training reward against step, one panel per rule, one curve "
             "per N (mean and 95% band over seeds)", "S1", "lm_s1.json"),
    _planned("fig04_dynamics_grid", "Fig. 4",
             "dynamics grid: rows N; reward, held-out success, length, KL, entropy, PG loss; "
             "the four main rules", "S1", "lm_s1.json"),
    _planned("fig05_mismatch", "Fig. 5",
             "train-inference mismatch: GRPO, +TIS, +routing replay, VESPO, VESPO+R2", "S5",
             "lm_s5.json"),
    _planned("fig06_length_norm", "Fig. 6",
             "length-normalisation ablation: reward, gradient norm, KL, entropy", "S3",
             "lm_s3.json"),
    _planned("fig07_asymmetry", "Fig. 7", "asymmetry ablation: (2,3)/(3,2) against one pair",
             "S4", "lm_s4.json"),
    _planned("fig08_grpo_failure", "Fig. 8", "GRPO's failure signal (entropy) at two staleness "
             "levels", "S2", "lm_s2.json"),
    _planned("fig09_gspo_failure", "Fig. 9", "GSPO's failure signal (response length) at two "
             "staleness levels", "S2", "lm_s2.json"),
    _planned("fig10_sapo_failure", "Fig. 10", "SAPO's failure signal (A < 0 under-suppressed) at "
             "two staleness levels", "S2", "lm_s2.json"),
    _planned("fig11_baselines", "Fig. 11", "TOPR, CISPO, BAPO (and VCPO) against VESPO", "S6",
             "lm_s6.json"),
    _planned("fig12_second_domain", "Fig. 12", "the second task domain (code in the paper)",
             "S7", "lm_s7.json"),
    _planned("readme_n4_reward", "README figure", "reward at N = 4, every rule", "S1",
             "lm_s1.json"),
    _planned("readme_async_grid", "README figure", "fully asynchronous run, 2x4 panels", "S1",
             "lm_async.json"),
    _planned("table1_model_sizes", "Table 1", "three model sizes at N = 8", "S8", "lm_s8.json",
             kind="table"),
    _planned("table2_staleness", "Table 2", "average score per rule and N", "S1", "lm_s1.json",
             kind="table"),
    _planned("table3_baselines", "Table 3", "VESPO against TOPR, CISPO, BAPO at N = 8", "S6",
             "lm_s6.json", kind="table"),
    _planned("table4_second_domain", "Table 4", "pass@k on the second domain", "S7",
             "lm_s7.json", kind="table"),
)  # fmt: skip

__all__ = ["S_CLAIMS", "SPECS", "planned_command"]
