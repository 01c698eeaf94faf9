"""A tiny stack language and its safe interpreter: the execution-based reward of the ``stack`` task.

The paper (VESPO, arXiv 2602.10693) claims (S7) that the method carries over to code
generation, where the reward comes from running the generated program against tests (the
setting of CodeRL: Le et al. 2022, "CodeRL: Mastering Code Generation through Pretrained Models
and Deep Reinforcement Learning", arXiv 2207.01780). This module supplies such a reward at
laboratory scale: the response is a program in a postfix (reverse Polish) language, it is
*executed*, and it is rewarded only by what it computes, so many different programs earn the
same reward 1.

Language (every character is in the tokenizer's alphabet, :data:`simulations.lm.tokenizer.CHARS`):

* a digit ``0``-``9`` pushes that one-digit number (``17`` pushes 1, then 7);
* ``+`` pops two numbers and pushes their sum;
* ``:`` duplicates the top of the stack (Forth's ``DUP``), so ``:+`` doubles it.

A program is *well formed* when it is non-empty, at most :data:`MAX_PROGRAM` characters long,
uses only those 12 characters, never pops an empty stack, never holds more than
:data:`MAX_DEPTH` numbers and never a number above :data:`MAX_VALUE`; its value is the one
number left on the stack at the end (exactly one, or it is malformed). :func:`run` returns
``None`` for a malformed program and never raises: it evaluates nothing of Python (no ``eval``),
and one character is one step, so a run costs at most :data:`MAX_PROGRAM` steps.

>>> run("98+"), run("9:+"), run("54+3+"), run("7")
(17, 18, 12, 7)
>>> run(""), run("+"), run("98"), run("9+"), run("9 8+"), run("9" * 17)
(None, None, None, None, None, None)
>>> canonical(23), canonical(9), canonical(4), canonical(0)
('99+5+', '9', '4', '0')
>>> all(run(canonical(n)) == n for n in range(500))
True
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_PROGRAM", "MAX_VALUE", "OPS", "canonical", "run"]

OPS = "0123456789+:"  # the language's characters
MAX_PROGRAM = 128  # characters (= interpreter steps) a program may have
MAX_DEPTH = 16  # numbers the stack may hold
MAX_VALUE = 10**6  # the largest number the stack may hold

_DIGITS = frozenset("0123456789")  # str.isdigit also accepts other scripts' digits


def run(program: str) -> int | None:
    """The value ``program`` computes, or ``None`` if it is malformed (see the module doc).

    Never raises for a string; any other type is malformed too.
    """
    if not isinstance(program, str) or not 0 < len(program) <= MAX_PROGRAM:
        return None
    stack: list[int] = []
    for c in program:
        if c in _DIGITS:
            stack.append(ord(c) - ord("0"))
        elif c == "+":
            if len(stack) < 2:
                return None
            top = stack.pop()
            stack[-1] += top
        elif c == ":":
            if not stack:
                return None
            stack.append(stack[-1])
        else:
            return None
        if len(stack) > MAX_DEPTH or stack[-1] > MAX_VALUE:
            return None
    return stack[0] if len(stack) == 1 else None


def canonical(n: int) -> str:
    """The reference program for target ``n`` >= 0: nines summed left to right, then the rest.

    ``n = 9 q + r`` (0 <= r < 9) gives ``9`` then ``9+`` (q - 1 times) then ``r+`` when r > 0,
    that is 2 q + 1 characters (2 q - 1 when r = 0); ``n`` < 9 gives the digit itself. The stack
    never holds more than two numbers.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    q, r = divmod(n, 9)
    if q == 0:
        return str(r)
    return "9" + "9+" * (q - 1) + (f"{r}+" if r else "")
