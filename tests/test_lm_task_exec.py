"""The ``stack`` task: a reward computed by executing the response (simulations/lm/programs.py).

The interpreter is checked on hand-worked programs (right, wrong, malformed, too long, too deep,
too large), alternative correct programs must earn reward 1 like the reference, the reference
must earn 1 on many seeded prompts, and random strings over the tokenizer's alphabet must never
make the reward raise.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.lm import programs
from simulations.lm.programs import MAX_DEPTH, MAX_PROGRAM, MAX_VALUE, canonical, run
from simulations.lm.tasks import TASKS, Task, available_tasks, get_task
from simulations.lm.tokenizer import CHARS, CharTokenizer

STACK_TASKS = [n for n in available_tasks() if get_task(n).kind == "stack"]
TOK = CharTokenizer()


def test_stack_tasks_registered():
    assert {"stack", "stack-short"} <= set(STACK_TASKS)
    assert get_task("stack").head == "="
    # the head is no other kind's: the first character tells the kinds apart
    heads = {get_task(n).kind: get_task(n).head for n in available_tasks()}
    assert len(set(heads.values())) == len(heads)


def test_alphabet_unchanged():
    # cached checkpoints of every task are shaped by the vocabulary: it must not grow
    assert CHARS == "0123456789+=,:|>RSA "
    assert TOK.vocab_size == 23
    assert set(programs.OPS) <= set(CHARS)


@pytest.mark.parametrize(
    "program, value",
    [
        ("7", 7),
        ("0", 0),
        ("98+", 17),
        ("89+", 17),
        ("54+3+", 12),
        ("543++", 12),
        ("9:+", 18),
        ("3::++", 9),
        ("1:+:+:+", 8),
        ("99+9+5+", 32),
    ],
)
def test_run_hand_examples(program, value):
    assert run(program) == value


@pytest.mark.parametrize(
    "program",
    [
        "",  # empty
        "+",  # pops an empty stack
        "9+",  # pops one number too many
        ":",  # duplicates nothing
        "98",  # two numbers left
        "98+7",  # two numbers left
        "9 8+",  # a space is not in the language
        "98+>",  # nor is any other alphabet character
        "A",
        "9=9",
        "9" * (MAX_DEPTH + 1),  # too deep
        "9" * (MAX_DEPTH + 1) + "+" * MAX_DEPTH,  # too deep (the value would be 153)
        "9" + ":" * MAX_DEPTH + "+" * MAX_DEPTH,  # too deep by duplication (would be 153)
        "1" + "1+" * (MAX_PROGRAM // 2),  # too long (129 characters; the value would be 65)
        "9" + ":+" * 20,  # 9 * 2**20 > MAX_VALUE
        "\u0663",  # ARABIC-INDIC DIGIT THREE: str.isdigit() is true, not a digit here
        None,  # not a string at all
        ["9"],
    ],
)
def test_run_malformed_is_none_never_raises(program):
    assert run(program) is None


def test_run_limits_are_exact():
    assert run("9" * MAX_DEPTH + "+" * (MAX_DEPTH - 1)) == 9 * MAX_DEPTH
    # a well-formed program has odd length (each + undoes one push or dup): 127 is the longest
    long_ok = "1" + "1+" * ((MAX_PROGRAM - 1) // 2)
    assert len(long_ok) == MAX_PROGRAM - 1 and run(long_ok) == MAX_PROGRAM // 2
    assert run(long_ok + "1+") is None
    big = "9" + ":+" * 16  # 9 * 2**16 = 589,824 <= MAX_VALUE
    assert run(big) == 9 * 2**16 <= MAX_VALUE


def test_canonical_computes_its_target_and_has_stated_length():
    for n in range(0, 501):
        prog = canonical(n)
        assert run(prog) == n
        q, r = divmod(n, 9)
        expected = 1 if q == 0 else 2 * q + 1 - 2 * (r == 0)
        assert len(prog) == expected
    with pytest.raises(ValueError, match="n must be"):
        canonical(-1)


@pytest.mark.parametrize(
    "prompt, response, reward",
    [
        ("=23>", "99+5+", 1.0),  # the reference
        ("=23>", "599++", 1.0),  # the same numbers in another order
        ("=23>", "88+7+", 1.0),  # other numbers
        ("=23>", "1:+:+:+:+7+", 1.0),  # doubling: 16 + 7
        ("=23>", "99+4+", 0.0),  # 22
        ("=23>", "99+5", 0.0),  # two numbers left
        ("=23>", "23", 0.0),  # not the decimal number: pushes 2 and 3
        ("=23>", "", 0.0),
        ("=23>", "+++", 0.0),
        ("=7>", "7", 1.0),
        ("=7>", "34+", 1.0),
        ("=7>", "7 ", 0.0),
    ],
)
def test_reward_executes_the_response(prompt, response, reward):
    assert get_task("stack").reward(prompt, response) == reward


def _alternatives(n: int) -> set[str]:
    """Correct programs for ``n`` other than the reference, built by hand."""
    q, r = divmod(n, 9)
    alts = {str(r) + "9+" * q}  # the rest first, then the nines
    e, f = divmod(n, 8)
    if e:
        alts.add("8" + "8+" * (e - 1) + (f"{f}+" if f else ""))  # eights
    if n % 2 == 0 and n:
        alts.add(canonical(n // 2) + ":+")  # half of it, doubled
    if n >= 3:
        alts.add("1" + "1+" * 2 + canonical(n - 3) + "+")  # three ones first
    alts.discard(canonical(n))
    return alts


def test_alternative_programs_get_reward_one():
    task = get_task("stack")
    seen = 0
    for prompt in task.sample(np.random.default_rng(3), 200):
        n = task._target(prompt)
        alts = _alternatives(n)
        assert len(alts) >= 2
        for a in alts:
            assert run(a) == n, (prompt, a)
            assert task.reward(prompt, a) == 1.0, (prompt, a)
            seen += 1
        assert task.reward(prompt, canonical(n + 1)) == 0.0
        assert task.reward(prompt, canonical(n - 1)) == 0.0
    assert seen >= 400


@pytest.mark.parametrize("name", STACK_TASKS)
def test_every_target_fits_max_response_len(name):
    """Every target of the range, not only sampled ones (sampled prompts' references scoring 1
    and fitting are checked for every registered task in tests/test_lm_model.py)."""
    task = get_task(name)
    for n in range(task.min_len, task.max_len + 1):
        assert task.reward(f"={n}>", canonical(n)) == 1.0
        assert len(canonical(n)) + 1 <= task.max_response_len()
        assert len(canonical(n)) <= MAX_PROGRAM


@pytest.mark.parametrize("name", STACK_TASKS)
def test_prompts_use_the_alphabet_and_are_seeded(name):
    task = get_task(name)
    a = task.sample(np.random.default_rng(7), 300)
    assert a == task.sample(np.random.default_rng(7), 300)
    assert a != task.sample(np.random.default_rng(8), 300)
    for p in a:
        TOK.encode(p)  # raises outside the alphabet
        TOK.encode(task.answer(p))
        assert p[0] == "=" and p[-1] == ">"
        assert task.min_len <= task._target(p) <= task.max_len
    assert a[:3] == task.sample(np.random.default_rng(7), 3)  # one draw per prompt
    # the prompt and position budget of simulations.lm.sft.make_model covers these prompts
    assert max(len(p) for p in a) <= task.max_len * 2 + 3


def test_stack_prompts_are_one_draw_each():
    # the warm start's held-out prompts are drawn like this: changing the sampler changes them
    for name in STACK_TASKS:
        task = get_task(name)
        rng = np.random.default_rng(0)
        expected = [f"={int(rng.integers(task.min_len, task.max_len + 1))}>" for _ in range(50)]
        assert task.sample(np.random.default_rng(0), 50) == expected
    assert get_task("stack").sample(np.random.default_rng(0), 3) == ["=129>", "=99>", "=82>"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=CHARS, max_size=MAX_PROGRAM + 20))
def test_fuzz_reward_never_raises(response):
    task = get_task("stack")
    for prompt in ("=0>", "=23>", "=150>"):
        r = task.reward(prompt, response)
        assert r in (0.0, 1.0)
    v = run(response)
    assert v is None or (isinstance(v, int) and 0 <= v <= MAX_VALUE)
    if v is not None:
        assert task.reward(f"={v}>", response) == 1.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_any_text_never_raises(response):
    # any Unicode at all (a decoded response is alphabet-only, but run() must not care)
    v = run(response)
    assert v is None or set(response) <= set(programs.OPS)


@given(st.text(alphabet="0123456789+:", min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_fuzz_matches_a_reference_evaluator(program):
    # an independent evaluator: a recursive-descent reading of the postfix program
    stack = []
    ok = True
    for c in program:
        if c.isdigit():
            stack.append(int(c))
        elif c == "+" and len(stack) >= 2:
            stack[-2:] = [stack[-2] + stack[-1]]
        elif c == ":" and stack:
            stack.append(stack[-1])
        else:
            ok = False
            break
        if len(stack) > MAX_DEPTH or stack[-1] > MAX_VALUE:
            ok = False
            break
    expected = stack[0] if ok and len(stack) == 1 else None
    assert run(program) == expected


def test_stack_prompt_validation():
    task = get_task("stack")
    for bad in ("A23>", "=23", "=>", "=0023>", "=2+3>", "=\u0663>"):
        with pytest.raises(ValueError, match="prompt"):
            task.reward(bad, "99+5+")
    with pytest.raises(ValueError, match="prompt"):
        task.answer("=abc>")


def test_task_validation_and_registry():
    with pytest.raises(ValueError, match="stack"):
        Task("x", "bad kind", 1, 2, "nope")  # the message lists the valid kinds
    with pytest.raises(ValueError, match="min_len/max_len"):
        Task("x", "range", 5, 4, "stack")
    with pytest.raises(ValueError, match="min_len/max_len"):
        Task("x", "range", -1, 4, "stack")
    with pytest.raises(ValueError, match="min_len/max_len"):
        Task("x", "too large", 0, 10_000, "stack")
    with pytest.raises(ValueError, match="valid tasks: .*stack"):
        get_task("nope")
    assert TASKS["stack"].description and TASKS["stack-short"].description


# sha256 of the existing tasks' prompts, answers, rewards, heads and max_response_len (the
# function below) as they were before the stack task was added (commit c3e3712)
EXISTING_DIGEST = "4eb39bac14e6ecf1a02e5b5c7fa673986fa55519120928598788910fcef4dab2"


def _existing_digest() -> str:
    h = hashlib.sha256()
    for n in ["add", "reverse", "sort", "reverse-short", "count-long", "count-xl"]:
        t = get_task(n)
        for p in t.sample(np.random.default_rng(0), 200):
            a = t.answer(p)
            rewards = (t.reward(p, a), t.reward(p, a + "9"), t.reward(p, a[:-1]))
            h.update(f"{n}|{p}|{a}|{rewards[0]}|{rewards[1]}|{rewards[2]}\n".encode())
        h.update(f"{n}|{t.max_response_len()}|{t.head}|{t.kind}\n".encode())
    return h.hexdigest()


def test_existing_tasks_unchanged():
    # the RL runs of the existing tasks are cached by their numbers: prompts, answers, rewards
    # and max_response_len must not move
    assert _existing_digest() == EXISTING_DIGEST
    assert get_task("add").answer("A47+85>") == "7+5=12,4+8+1=13:132"
    assert get_task("add").max_response_len() == 36
    assert get_task("count-long").max_response_len() == 1028


def test_list_tasks_shows_stack(capsys):
    from vespo_theory.cli import main

    assert main(["train-lm", "--list-tasks"]) == 0
    out = capsys.readouterr().out
    assert "stack " in out and "stack-short" in out
