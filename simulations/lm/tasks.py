"""Synthetic tasks with a verifiable 0/1 reward and variable-length answers.

Each task draws a prompt and its reference answer from a NumPy ``Generator`` and scores a sampled
response by exact match of the final answer. Answer length grows with the prompt's size, so the
sequence length T (and with it the spread of the sequence log-weight) varies within a batch.

* ``add``: multi-digit addition with worked steps, least significant column first:
  ``A47+85>`` -> ``7+5=12,4+8+1=13:132`` (only the part after ``:`` is scored).
* ``reverse``: ``R3081>`` -> ``1803``.
* ``sort``: ``S3081>`` -> ``0138``.
* ``count`` (long responses): count down from a fixed-width start number to zero,
  ``|012>`` -> ``011,010,009,...,001,000``: a start ``a`` gives a response of ``4 a`` tokens
  (EOS included), so ``count-long`` (``a`` in 25-256) runs from 100 to 1,024 tokens. Every
  token depends only on the previous number and the position within it (fixed offsets of 1-3
  tokens), which a two-layer model learns in minutes on CPU (``count-xl``: 25-512, up to
  2,048 tokens, for benchmarks/gpu_validate.py); the reward is exact match of the
  whole response, so one wrong token anywhere in a thousand fails it.
* ``stack`` (reward by execution, like code with unit tests): ``=23>`` asks for a program of
  the postfix language of :mod:`simulations.lm.programs` (digit pushes, ``+`` add, ``:`` dup)
  that computes 23; the reference is ``99+5+`` (nines, then the rest), but the response is
  *run*, so ``88+7+``, ``5:+:+3+`` or ``599++`` earn 1 as well; a malformed program earns 0.
  Targets 10-150 give reference programs of 3-33 tokens (``stack-short``: 0-30, easy).

>>> import numpy as np
>>> t = get_task("add")
>>> t.answer("A47+85>")
'7+5=12,4+8+1=13:132'
>>> t.reward("A47+85>", "junk:132"), t.reward("A47+85>", "7+5=12:131")
(1.0, 0.0)
>>> get_task("reverse").answer("R3081>"), get_task("sort").answer("S3081>")
('1803', '0138')
>>> get_task("count-long").answer("|003>")
'002,001,000'
>>> s = get_task("stack")
>>> s.answer("=23>"), s.reward("=23>", "88+7+"), s.reward("=23>", "5:+:+3+"), s.reward("=23>", "23")
('99+5+', 1.0, 1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulations.lm.programs import canonical, run

__all__ = ["TASKS", "Task", "available_tasks", "get_task"]


@dataclass(frozen=True)
class Task:
    """A task: prompt generator, reference answer and reward. ``max_len`` bounds operand size."""

    name: str
    description: str
    min_len: int
    max_len: int
    kind: str = ""  # add | reverse | sort | count | stack; defaults to the name

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.name)
        if self.kind not in _HEAD:
            raise ValueError(f"Task.kind must be one of {', '.join(_HEAD)}, got {self.kind!r}")
        if self.kind == "count" and not 1 <= self.min_len <= self.max_len:
            raise ValueError(
                f"Task.min_len/max_len: need 1 <= min_len <= max_len for count, "
                f"got {self.min_len}, {self.max_len}"
            )
        if self.kind == "stack" and not 0 <= self.min_len <= self.max_len <= _STACK_MAX_TARGET:
            raise ValueError(
                f"Task.min_len/max_len: need 0 <= min_len <= max_len <= {_STACK_MAX_TARGET} "
                f"for stack, got {self.min_len}, {self.max_len}"
            )

    @property
    def head(self) -> str:
        """The prompt's first character (``A``, ``R``, ``S``; ``|`` for count, ``=`` for stack)."""
        return _HEAD[self.kind]

    def _width(self) -> int:
        """Digits of every number of a count task (that of ``max_len``)."""
        return len(str(self.max_len))

    # -- prompts ---------------------------------------------------------------------------
    def sample_prompt(self, rng: np.random.Generator) -> str:
        if self.kind == "add":
            na, nb = rng.integers(self.min_len, self.max_len + 1, size=2)
            a = int(rng.integers(10 ** (na - 1) if na > 1 else 0, 10**na))
            b = int(rng.integers(10 ** (nb - 1) if nb > 1 else 0, 10**nb))
            return f"A{a}+{b}>"
        if self.kind == "count":
            a = int(rng.integers(self.min_len, self.max_len + 1))
            return f"|{a:0{self._width()}d}>"
        if self.kind == "stack":
            return f"={int(rng.integers(self.min_len, self.max_len + 1))}>"
        n = int(rng.integers(self.min_len, self.max_len + 1))
        digits = "".join(str(d) for d in rng.integers(0, 10, size=n))
        return f"{self.kind[0].upper()}{digits}>"

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` prompts drawn from ``rng``."""
        return [self.sample_prompt(rng) for _ in range(n)]

    # -- answers ---------------------------------------------------------------------------
    def _check_prompt(self, prompt: str) -> str:
        head = self.head
        if not (prompt.startswith(head) and prompt.endswith(">")):
            raise ValueError(f"prompt: {prompt!r} is not a {self.name!r} prompt")
        return prompt[1:-1]

    def answer(self, prompt: str) -> str:
        """The reference response (what supervised warm start imitates)."""
        body = self._check_prompt(prompt)
        if self.kind == "reverse":
            return body[::-1]
        if self.kind == "sort":
            return "".join(sorted(body))
        if self.kind == "count":
            w = self._width()
            if len(body) != w or not body.isdigit() or int(body) < 1:
                raise ValueError(f"prompt: {prompt!r} is not a {self.name!r} prompt")
            return ",".join(f"{i:0{w}d}" for i in range(int(body) - 1, -1, -1))
        if self.kind == "stack":
            return canonical(self._target(prompt))
        a, b = body.split("+")
        da, db = a[::-1], b[::-1]
        steps, carry = [], 0
        for i in range(max(len(da), len(db))):
            x = int(da[i]) if i < len(da) else 0
            y = int(db[i]) if i < len(db) else 0
            s = x + y + carry
            steps.append(f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={s}")
            carry = s // 10
        return ",".join(steps) + f":{int(a) + int(b)}"

    def _target(self, prompt: str) -> int:
        """The number a ``stack`` prompt asks for (ValueError for a malformed prompt)."""
        body = self._check_prompt(prompt)
        if not (body.isdigit() and body.isascii()) or body != str(int(body)):
            raise ValueError(f"prompt: {prompt!r} is not a {self.name!r} prompt")
        return int(body)

    def final_answer(self, response: str) -> str:
        """The scored part of a response (after the last ``:`` for ``add``)."""
        if self.kind == "add":
            return response.rsplit(":", 1)[-1] if ":" in response else ""
        return response

    def reward(self, prompt: str, response: str) -> float:
        """1.0 if the response's final answer is exactly right, else 0.0.

        ``stack``: 1.0 if the response, run as a program (:func:`simulations.lm.programs.run`),
        computes the prompt's target, else 0.0 (a malformed program included; never raises).
        """
        if self.kind == "stack":
            return float(run(response) == self._target(prompt))
        return float(self.final_answer(response) == self.final_answer(self.answer(prompt)))

    def max_response_len(self) -> int:
        """Tokens a correct answer can need, plus EOS and a margin for wrong ones."""
        if self.kind == "add":
            n = self.max_len
            return n * len("9+9+1=19,") + n + 2 + 4
        if self.kind == "count":
            return self.max_len * (self._width() + 1) + 4
        if self.kind == "stack":  # the longest reference program, EOS and the margin
            return max(len(canonical(n)) for n in range(self.min_len, self.max_len + 1)) + 1 + 4
        return self.max_len + 1 + 4


_HEAD = {"add": "A", "reverse": "R", "sort": "S", "count": "|", "stack": "="}
_STACK_MAX_TARGET = 500  # canonical(500) has 111 characters (< programs.MAX_PROGRAM)

TASKS: dict[str, Task] = {
    "add": Task("add", "multi-digit addition with worked column steps; 1-3 digit operands", 1, 3),
    "reverse": Task("reverse", "reverse a digit string of length 3-12", 3, 12),
    "sort": Task("sort", "sort a digit string of length 3-12", 3, 12),
    "reverse-short": Task(
        "reverse-short", "reverse a digit string of length 1-3 (easy: smoke tests)", 1, 3, "reverse"
    ),
    "stack": Task(
        "stack",
        "write a postfix program (digit pushes, + add, : dup) that computes a target in 10-150",
        10,
        150,
    ),
    "stack-short": Task(
        "stack-short", "stack with targets 0-30 (easy: smoke tests)", 0, 30, "stack"
    ),
    "count-long": Task(
        "count-long",
        "count down from a start in 25-256 to 000 (long responses: 100-1,024 tokens)",
        25,
        256,
        "count",
    ),
    "count-xl": Task(
        "count-xl",
        "count down from a start in 25-512 to 000 (responses of 100-2,048 tokens; GPU scale)",
        25,
        512,
        "count",
    ),
}


def available_tasks() -> list[str]:
    return sorted(TASKS)


def get_task(name: str) -> Task:
    """The task called ``name``; ValueError listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(
            f"task: unknown task {name!r}; valid tasks: {', '.join(available_tasks())}"
        )
    return TASKS[name]
