"""The mixture-of-experts option of the small GPT, routing record / replay, and route:SIGMA."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from simulations.lm.model import GPT, GPTConfig, positions_from_mask
from simulations.lm.moe import (
    MoEFFN,
    moe_layers,
    route_noise,
    routing_mismatch_stats,
    routing_record,
    routing_replay,
)
from simulations.lm.sampling import (
    SamplerEngine,
    generate,
    left_pad,
    parse_mismatch,
    sequence_log_probs,
)
from simulations.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()
# float64: the cached and full paths (and the sampler and the trainer) differ only by summation
# order, ~1e-13 per logit (tests/test_lm_model.py's TOL64 budget: d_model 32, 2 layers; the
# MoE adds a sum of 4 gated experts of width 64, same order). A sequence log W sums <= 12
# response tokens: ~1e-12 worst case. 1e-10 is ~100x that; a single flipped expert choice
# moves a log-prob by ~1e-4 or more at this init (seen: 1e-3 to 4e-2 per sequence).
TOL64 = 1e-10


def _moe(dtype=torch.float64, seed=0, attn="explicit", n_expert=4, top_k=2):
    torch.manual_seed(seed)
    cfg = GPTConfig(TOK.vocab_size, 32, 2, 4, 64, attn, n_expert=n_expert, top_k=top_k)
    return GPT(cfg).to(dtype)


def _prompts():
    texts = ["A7+85>", "R0123456>", "S91>", "A123+4>"]  # different lengths: left padding
    return left_pad([[TOK.bos_id, *TOK.encode(t)] for t in texts], TOK.pad_id, "cpu")


def _log_w(lp, r):
    return ((lp - r.rollout_log_prob) * r.response_mask).sum(-1).detach()


def _sample(model, engine=None, seed=1, n_rep=4, **kw):
    ids, mask = _prompts()
    ids, mask = ids.repeat(n_rep, 1), mask.repeat(n_rep, 1)
    gen = torch.Generator().manual_seed(seed)
    return generate(
        model, ids, mask, 12, eos_id=TOK.eos_id, pad_id=TOK.pad_id, generator=gen,
        engine=engine, **kw,
    )  # fmt: skip


# ---- a frozen copy of the dense model as it was before the MoE option (model.py at c3e3712).
# The dense default must keep its parameters, their init order and every number: cached warm
# starts (sft.py) are loaded into it by state_dict. Copied verbatim except for the names.
class _RefBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.sdpa = cfg.attn == "sdpa"
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, bias, past):
        B, S, D = x.shape
        H = self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, S, H, D // H).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if self.sdpa:
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // H)) + bias
            low = att.dtype in (torch.float16, torch.bfloat16)
            att = torch.softmax(att.float() if low else att, dim=-1).to(v.dtype)
            y = att @ v
        y = y.transpose(1, 2).reshape(B, S, D)
        x = x + self.proj(y)
        x = x + self.mlp(self.ln2(x))
        return x, (k, v)


class _RefGPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(_RefBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, idx, attn_mask, pos_ids, past=None):
        B, S = idx.shape
        P = 0 if past is None else past[0][0].shape[2]
        x = self.tok(idx) + self.pos(pos_ids)
        q_abs = torch.arange(P, P + S, device=idx.device)[:, None]
        k_abs = torch.arange(P + S, device=idx.device)[None, :]
        allowed = (k_abs <= q_abs)[None] & attn_mask.bool()[:, None, :]
        allowed = allowed | (k_abs == q_abs)[None]
        if self.cfg.attn == "sdpa":
            bias = allowed[:, None]
        else:
            zero = torch.zeros((), dtype=x.dtype, device=idx.device)
            bias = torch.where(allowed, zero, torch.finfo(x.dtype).min)[:, None]
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, bias, None if past is None else past[i])
            present.append(kv)
        return self.head(self.ln_f(x)), present


@pytest.mark.parametrize("attn", ["explicit", "sdpa"])
def test_dense_default_is_bitwise_the_pre_moe_model(attn):
    cfg = GPTConfig(TOK.vocab_size, 32, 2, 4, 64, attn)
    assert cfg.n_expert == 0
    torch.manual_seed(3)
    new = GPT(cfg)
    after_new = torch.rand(3)  # the init consumed the global RNG exactly as before
    torch.manual_seed(3)
    ref = _RefGPT(cfg)
    after_ref = torch.rand(3)
    assert torch.equal(after_new, after_ref)
    sd_new, sd_ref = new.state_dict(), ref.state_dict()
    assert list(sd_new) == list(sd_ref)  # same keys in the same order
    for k in sd_ref:
        assert sd_new[k].shape == sd_ref[k].shape and torch.equal(sd_new[k], sd_ref[k]), k
    assert not moe_layers(new)
    # a checkpoint of the old model loads strictly; forwards (full and cached) are bitwise equal
    new.load_state_dict(sd_ref, strict=True)
    ids, mask = _prompts()
    pos = positions_from_mask(mask)
    a, pa = new(ids, mask, pos)
    b, pb = ref(ids, mask, pos)
    assert torch.equal(a, b)
    tok = torch.full((ids.shape[0], 1), 5)
    m2 = torch.cat([mask, torch.ones_like(tok)], 1)
    p2 = positions_from_mask(m2)[:, -1:]
    assert torch.equal(new(tok, m2, p2, pa)[0], ref(tok, m2, p2, pb)[0])


def test_moe_config_validation_and_layout():
    for bad in (dict(n_expert=-1), dict(n_expert=4, top_k=0), dict(n_expert=2, top_k=3),
                dict(n_expert=True), dict(n_expert=4, top_k=2.0)):  # fmt: skip
        with pytest.raises(ValueError, match="n_expert|top_k"):
            GPTConfig(TOK.vocab_size, **bad)
    GPTConfig(TOK.vocab_size, n_expert=0, top_k=5)  # top_k unused by a dense model
    model = _moe(n_expert=4, top_k=2)
    layers = moe_layers(model)
    assert len(layers) == 2 and all(isinstance(m, MoEFFN) for m in layers)
    keys = [k for k in model.state_dict() if ".mlp." in k]
    assert "blocks.0.mlp.router.weight" in keys and "blocks.1.mlp.experts.3.2.bias" in keys
    assert model.blocks[0].mlp.experts[0][0].weight.shape == (4 * 32 // 2, 32)
    assert model.blocks[0].mlp.router.weight.shape == (4, 32)
    # the GPT init covers the router and the experts (std 0.02 weights, zero biases)
    assert float(model.blocks[0].mlp.router.bias.detach().abs().max()) == 0.0
    assert 0.01 < float(model.blocks[1].mlp.experts[2][0].weight.detach().std()) < 0.03


@pytest.mark.parametrize("attn", ["explicit", "sdpa"])
def test_moe_kv_cache_equals_full_forward_and_records_the_same_routes(attn):
    model = _moe(attn=attn)
    ids, mask = _prompts()
    rng = torch.Generator().manual_seed(1)
    new = torch.randint(3, TOK.vocab_size, (ids.shape[0], 6), generator=rng)
    full_ids = torch.cat([ids, new], 1)
    full_mask = torch.cat([mask, torch.ones_like(new)], 1)
    with routing_record(model) as rec_full:
        full_logits, _ = model(full_ids, full_mask, positions_from_mask(full_mask))
    with routing_record(model) as rec_step:
        logits, past = model(ids, mask, positions_from_mask(mask))
        steps = [logits[:, -1]]
        for t in range(new.shape[1]):
            m = full_mask[:, : ids.shape[1] + t + 1]
            out, past = model(new[:, t : t + 1], m, positions_from_mask(m)[:, -1:], past)
            steps.append(out[:, -1])
    cached = torch.stack(steps[:-1], 1)
    ref = full_logits[:, ids.shape[1] - 1 : -1]
    assert (cached - ref).abs().max() <= TOL64
    routes = rec_full.routes()
    assert routes.shape == (ids.shape[0], full_ids.shape[1], 2, 2)
    assert torch.equal(routes, rec_step.routes())
    # replay in chunks (prompt call, then cached steps) equals a full replayed forward
    forced = torch.randint(0, 4, routes.shape[:-1] + (1,), generator=rng)
    forced = torch.cat([forced, (forced + 1) % 4], -1)  # distinct per token
    with routing_replay(model, forced):
        rep_full, _ = model(full_ids, full_mask, positions_from_mask(full_mask))
    assert (rep_full - full_logits).abs().max() > 1e-6  # the replay changed the experts
    with routing_replay(model, forced):
        logits, past = model(ids, mask, positions_from_mask(mask))
        steps = [logits[:, -1]]
        for t in range(new.shape[1]):
            m = full_mask[:, : ids.shape[1] + t + 1]
            out, past = model(new[:, t : t + 1], m, positions_from_mask(m)[:, -1:], past)
            steps.append(out[:, -1])
    assert (torch.stack(steps[:-1], 1) - rep_full[:, ids.shape[1] - 1 : -1]).abs().max() <= TOL64


def test_moe_is_deterministic_on_cpu_and_generate_records_routes():
    a, b = _moe(torch.float32), _moe(torch.float32)
    ids, mask = _prompts()
    pos = positions_from_mask(mask)
    assert torch.equal(a(ids, mask, pos)[0], b(ids, mask, pos)[0])
    r1, r2 = _sample(a), _sample(b)
    assert torch.equal(r1.response_ids, r2.response_ids)
    assert torch.equal(r1.rollout_log_prob, r2.rollout_log_prob)
    assert torch.equal(r1.routing, r2.routing)
    B, P, T = r1.prompt_ids.shape[0], r1.prompt_ids.shape[1], r1.response_ids.shape[1]
    assert r1.routing.shape == (B, P + T, 2, 2) and r1.routing.dtype == torch.long
    assert int(r1.routing.min()) >= 0 and int(r1.routing.max()) < 4
    assert bool((r1.routing[..., 0] != r1.routing[..., 1]).all())  # k distinct experts
    # without noise the sampler's routes are the trainer's own, at every position
    with routing_record(a) as rec:
        sequence_log_probs(a, r1)
    assert torch.equal(rec.routes(), r1.routing)
    # Rollout.index carries the routes; dense models have none
    sub = r1.index(slice(1, 3))
    assert torch.equal(sub.routing, r1.routing[1:3])
    torch.manual_seed(0)
    dense = GPT(GPTConfig(TOK.vocab_size, 32, 2, 4, 64))
    rd = _sample(dense)
    assert rd.routing is None and rd.index([0]).routing is None
    with pytest.raises(ValueError, match="record_routing"):
        _sample(dense, record_routing=True)
    with pytest.raises(ValueError, match="replay_routing"):
        sequence_log_probs(dense, rd, replay_routing=True)
    assert _sample(a, record_routing=False).routing is None


def test_generate_without_cache_records_the_same_routes():
    model = _moe()
    r1 = _sample(model)
    r2 = _sample(model, use_cache=False)
    assert torch.equal(r1.response_ids, r2.response_ids)
    assert torch.equal(r1.routing, r2.routing)
    with pytest.raises(ValueError, match="use_cache"):
        _sample(model, parse_mismatch("route:0.1"), use_cache=False)


def test_route_noise_flips_experts_and_replay_removes_the_whole_mismatch():
    model = _moe()
    engine = parse_mismatch("route:0.1")
    assert engine == SamplerEngine("route", 0.1)
    assert engine.prepare(model) is model  # the trainer's own weights
    r = _sample(model, engine)
    lw = _log_w(sequence_log_probs(model, r), r)
    lw_rep = _log_w(sequence_log_probs(model, r, replay_routing=True), r)
    # no replay: the trainer routes some tokens differently from the sampler -> log W != 0
    assert float(lw.abs().max()) > 1e3 * TOL64
    assert int((lw.abs() > 1e3 * TOL64).sum()) >= 2
    # replay: the same experts and the same (trainer) gates -> the same function, log W = 0
    assert float(lw_rep.abs().max()) <= TOL64
    # the rollout log-probs are those of the replayed trainer token by token
    lp_rep = sequence_log_probs(model, r, replay_routing=True)
    assert ((lp_rep - r.rollout_log_prob) * r.response_mask).abs().max() <= TOL64
    # control: no engine mismatch on the same model -> no flips, log W = 0 without replay
    r0 = _sample(model)
    assert float(_log_w(sequence_log_probs(model, r0), r0).abs().max()) <= TOL64
    # the noise is seeded by the sampling generator
    assert torch.equal(_sample(model, engine).routing, r.routing)
    assert not torch.equal(_sample(model, engine, seed=2).routing, r.routing)


def test_route_mismatch_on_a_dense_model_is_refused():
    torch.manual_seed(0)
    dense = GPT(GPTConfig(TOK.vocab_size, 32, 2, 4, 64))
    with pytest.raises(ValueError, match="no routed layers"):
        _sample(dense, parse_mismatch("route:0.5"))
    with pytest.raises(ValueError, match="n_expert"):
        parse_mismatch("route:0.5", n_expert=0)
    assert parse_mismatch("route:0.5", n_expert=4) == SamplerEngine("route", 0.5)
    for bad in ("route:0", "route:-1", "route:x", "route:inf", "route:nan", "route"):
        with pytest.raises(ValueError, match="--mismatch"):
            parse_mismatch(bad)
    for ctx in (routing_record(dense), routing_replay(dense, torch.zeros(1, 1, 2, 2).long()),
                route_noise(dense, 0.1)):  # fmt: skip
        with pytest.raises(ValueError, match="no routed"):
            ctx.__enter__()
    # the other engines are unchanged
    assert parse_mismatch("none") == SamplerEngine()
    assert parse_mismatch("bf16") == SamplerEngine("bf16")
    assert parse_mismatch("noise:0.5") == SamplerEngine("noise", 0.5)


def test_replay_validates_routes():
    model = _moe()
    ids, mask = _prompts()
    pos = positions_from_mask(mask)
    B, P = ids.shape
    good = torch.stack([torch.zeros(B, P, 2).long(), torch.ones(B, P, 2).long()], -1)
    bad = {
        "shape": good[..., :1],
        "int64": good.int(),
        r"\[0, 4\)": good + 3,
        "distinct": torch.zeros_like(good),
    }
    for match, routes in bad.items():
        with pytest.raises(ValueError, match=match):
            with routing_replay(model, routes):
                pass
    with routing_replay(model, good):
        model(ids, mask, pos)
        with pytest.raises(ValueError, match="positions"):  # the routes are used up
            model(ids, mask, pos)
    with routing_replay(model, good[:2]):
        with pytest.raises(ValueError, match="batch"):
            model(ids, mask, pos)
    # the state is restored on exit: the model routes itself again
    assert all(m._replay is None and m._record is None for m in moe_layers(model))


def test_gradient_reaches_the_router_under_replay():
    model = _moe(torch.float32)
    r = _sample(model, parse_mismatch("route:0.1"))
    model.zero_grad()
    lp = sequence_log_probs(model, r, replay_routing=True)
    lp.sum().backward()
    for layer in moe_layers(model):
        g = layer.router.weight.grad
        assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0
        # every expert that some token uses gets a gradient
        assert sum(float(e[0].weight.grad.abs().max()) > 0 for e in layer.experts) >= 2


def test_bf16_engine_runs_an_moe_sampler():
    model = _moe(torch.float32)
    engine = parse_mismatch("bf16")
    r = _sample(engine.prepare(model), engine)
    assert r.routing is not None and r.routing.shape[2:] == (2, 2)
    lw_rep = _log_w(sequence_log_probs(model, r, replay_routing=True), r)
    assert bool(torch.isfinite(lw_rep).all())


def test_routing_mismatch_stats_on_a_tiny_model():
    model = _moe()
    ids, mask = _prompts()
    prompts = [[TOK.bos_id, *TOK.encode(t)] for t in ["A7+85>", "R0123456>", "S91>", "A1+2>"]]
    kw = dict(max_new_tokens=10, eos_id=TOK.eos_id, pad_id=TOK.pad_id, n=24, batch_size=10)
    s = routing_mismatch_stats(model, prompts, sigma=0.1, **kw)
    assert s["n"] == 24 and s["sigma"] == 0.1
    assert s["max_abs_log_w_replay"] <= TOL64
    assert s["var_log_w_replay"] <= TOL64**2
    assert s["var_log_w_no_replay"] > 1e6 * TOL64**2
    assert 0 < s["flip_rate"] < 1 and 0 < s["seq_with_flip"] <= 1
    assert model.training  # restored
    # larger noise, more flips
    s2 = routing_mismatch_stats(model, prompts, sigma=1.0, **kw)
    assert s2["flip_rate"] > s["flip_rate"]
    with pytest.raises(ValueError, match="n >= 2"):
        routing_mismatch_stats(model, prompts, sigma=0.1, **{**kw, "n": 1})


def test_per_sample_grads_of_an_moe_model_match_the_reference():
    from simulations.lm.grads import per_sample_grads, reference_grads

    torch.manual_seed(0)
    model = GPT(GPTConfig(TOK.vocab_size, 16, 2, 2, 64, n_expert=3, top_k=2)).double()
    r = _sample(model, n_rep=1)
    ref = reference_grads(model, r)
    assert float(ref.abs().max()) > 0
    for method in ("vmap", "loop"):  # no data-dependent shapes in the layer: vmap traces it
        G = per_sample_grads(model, r, method=method)
        assert (G - ref).abs().max() <= 1e-12, method


def test_measurement_command_runs_on_a_tiny_model(capsys):
    import json

    from simulations.lm.moe import _main

    threads = torch.get_num_threads()
    _main(["--steps", "2", "--d-model", "16", "--n", "4", "--sigma", "0.1", "1.0"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and 0 <= lines[0]["greedy_success"] <= 1
    assert [x["sigma"] for x in lines[1:]] == [0.1, 1.0]
    assert all(x["var_log_w_replay"] < 1e-8 for x in lines[1:])  # float32 rounding only
    assert torch.get_num_threads() == threads  # global settings restored
