"""Tests for rlstab_jax.stability.multihead: field report 004 checklist §1, §2, §5.1, §5.2, §5.4, §5.5."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.multihead import (
    causal_head_masks,
    clipped_surrogate,
    joint_log_ratio,
    make_op_head_table,
    masked_categorical_entropy,
    masked_categorical_log_prob,
    noop_inactive_actions,
    per_head_advantages,
    per_head_entropy_bonus,
    per_head_ratio_stats,
    q_op_stats,
)

# The report's factored action space (esper/tamiyo).
OPS = ("WAIT", "GERMINATE", "SET_ALPHA", "PRUNE", "FOSSILIZE", "ADVANCE")
WAIT, GERMINATE, SET_ALPHA, PRUNE, FOSSILIZE, ADVANCE = range(6)
SIZES = {"op": 6, "slot": 3, "blueprint": 13, "style": 4, "tempo": 3, "alpha_target": 3,
         "alpha_speed": 4, "alpha_curve": 5}
HEADS = tuple(SIZES)
TABLE = make_op_head_table(OPS, HEADS, {
    "WAIT": ["op"],
    "GERMINATE": ["op", "slot", "blueprint", "style", "tempo", "alpha_target"],
    "SET_ALPHA": ["op", "slot", "style", "alpha_target", "alpha_speed", "alpha_curve"],
    "PRUNE": ["op", "slot", "alpha_speed", "alpha_curve"],
    "FOSSILIZE": ["op", "slot"],
    "ADVANCE": ["op", "slot"],
})
B = 32


def _advantages(ops):
    adv = jax.random.normal(jax.random.key(0), (len(ops),)) + 0.1
    return per_head_advantages(adv, causal_head_masks(jnp.asarray(ops), TABLE, HEADS))


@jax.jit
def _policy(key, ops):
    """A tiny linear factored policy: per-head logits = feat @ W[head]."""
    ops = jnp.asarray(ops)
    kf, kw, ka = jax.random.split(key, 3)
    feat = jax.random.normal(kf, (ops.shape[0], 5))
    params = {h: 0.5 * jax.random.normal(k, (5, n))
              for (h, n), k in zip(SIZES.items(), jax.random.split(kw, len(SIZES)))}
    masks = causal_head_masks(ops, TABLE, HEADS)
    action_masks = {h: jnp.ones((ops.shape[0], n), bool) for h, n in SIZES.items()}
    sampled = {h: jax.random.categorical(k, feat @ params[h])
               for h, k in zip(HEADS, jax.random.split(ka, len(HEADS)))}
    sampled["op"] = ops
    actions = noop_inactive_actions(sampled, masks)
    return feat, params, masks, action_masks, actions


def test_wait_op_gives_zero_advantage_to_every_non_op_head():  # §1
    adv = _advantages([WAIT] * B)
    assert np.abs(np.asarray(adv["op"])).sum() > 0
    for head in HEADS[1:]:
        assert np.all(np.asarray(adv[head]) == 0.0), head


def test_advance_op_only_trains_op_and_slot():  # §2
    adv = _advantages([ADVANCE] * B)
    assert np.abs(np.asarray(adv["op"])).sum() > 0 and np.abs(np.asarray(adv["slot"])).sum() > 0
    for head in ("style", "alpha_target", "alpha_speed", "alpha_curve", "blueprint", "tempo"):
        assert np.all(np.asarray(adv[head]) == 0.0), head


def test_mixed_ops_follow_the_table_row_by_row():
    ops = jnp.arange(B) % 6
    masks = causal_head_masks(ops, TABLE, HEADS)
    for i, head in enumerate(HEADS):
        np.testing.assert_array_equal(masks[head], TABLE[np.asarray(ops), i])
    assert np.array_equal(masks["blueprint"], ops == GERMINATE)
    assert np.array_equal(masks["slot"], ops != WAIT)


def test_blueprint_records_noop_when_not_germinating():  # §1
    ops = jnp.arange(B) % 6
    _, _, _, _, actions = _policy(jax.random.key(1), ops)
    bp = np.asarray(actions["blueprint"])
    assert np.all(bp[np.asarray(ops) != GERMINATE] == 0)
    np.testing.assert_array_equal(actions["op"], ops)


def test_masked_log_prob_matches_renormalised_reference_and_is_finite():  # §5.1
    logits = jax.random.normal(jax.random.key(2), (4, 5)) * 3
    mask = jnp.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], bool)
    action = jnp.array([3, 0, 0, 0])  # last row: noop 0 recorded while 0 is invalid
    lp = masked_categorical_log_prob(logits, action, mask)
    ref0 = np.asarray(logits[0, 3]) - np.log(np.exp(np.asarray(logits[0, [0, 1, 3]])).sum())
    np.testing.assert_allclose(lp[0], ref0, rtol=1e-6)
    assert lp[1] == 0.0  # only the noop is valid: probability exactly 1
    np.testing.assert_allclose(lp[2], -np.log(5.0), rtol=1e-6)  # fully masked: uniform, not NaN
    assert np.all(np.isfinite(np.asarray(lp))) and lp[3] > -1e10 and lp[3] < -1e8
    ent = masked_categorical_entropy(logits, mask)
    p = np.exp(np.asarray(logits[0])) * np.asarray(mask[0])
    p /= p.sum()
    np.testing.assert_allclose(ent[0], -(p[p > 0] * np.log(p[p > 0])).sum(), rtol=1e-5)
    np.testing.assert_allclose(ent[1:3], [0.0, np.log(5.0)], atol=1e-6)
    g = jax.grad(lambda lg: masked_categorical_log_prob(lg, action, mask).sum()
                 + masked_categorical_entropy(lg, mask).sum())(logits)
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(g)[~np.asarray(mask)] == 0.0)  # invalid logits get no gradient


def test_wait_batch_log_probs_finite_with_fully_masked_heads():  # §5.1
    ops = jnp.full(B, WAIT)
    # Inactive heads: only the noop is valid (op head: everything).
    noop_only = {h: np.arange(n)[None].repeat(B, 0) == 0 if h != "op" else np.ones((B, n), bool)
                 for h, n in SIZES.items()}
    feat, params, masks, _, actions = _policy(jax.random.key(3), ops)

    def loss(p):
        logp = {h: masked_categorical_log_prob(feat @ p[h], actions[h], noop_only[h]) for h in HEADS}
        old = jax.lax.stop_gradient(logp)
        adv = jnp.ones(B)
        return clipped_surrogate(joint_log_ratio(logp, old, masks), adv, 0.2)[0], logp

    (value, logp), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    for head, lp in logp.items():
        assert np.all(np.isfinite(np.asarray(lp))) and np.all(np.asarray(lp) > -1e10), head
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads.values())


def _ppo_loss(params, feat, masks, action_masks, actions, ent_mode):
    logits = {h: feat @ params[h] for h in HEADS}
    logp = {h: masked_categorical_log_prob(logits[h], actions[h], action_masks[h]) for h in HEADS}
    ent = {h: masked_categorical_entropy(logits[h], action_masks[h]) for h in HEADS}
    adv = jnp.linspace(-1.0, 1.0, feat.shape[0])
    pg, _ = clipped_surrogate(joint_log_ratio(logp, jax.lax.stop_gradient(logp), masks), adv, 0.2)
    coefs = {"blueprint": 1.3, "tempo": 1.3, "style": 1.2}
    bonus, _ = per_head_entropy_bonus(ent, coefs, ent_mode, masks)
    return pg - 0.01 * bonus, pg


def test_entropy_gradient_reaches_causally_masked_heads():  # §5.2
    ops = jnp.array(([WAIT, ADVANCE, SET_ALPHA] * 11)[:B])  # blueprint never active
    feat, params, masks, amasks, actions = _policy(jax.random.key(4), ops)
    assert not np.any(np.asarray(masks["blueprint"]))

    @jax.jit
    def grads(p):
        g_pg = jax.grad(lambda q: _ppo_loss(q, feat, masks, amasks, actions, "all")[1])(p)
        g_all = jax.grad(lambda q: _ppo_loss(q, feat, masks, amasks, actions, "all")[0])(p)
        g_act = jax.grad(lambda q: _ppo_loss(q, feat, masks, amasks, actions, "active_only")[0])(p)
        return g_pg["blueprint"], g_all["blueprint"], g_act["blueprint"]

    g_pg, g_all, g_act = grads(params)
    assert np.all(np.asarray(g_pg) == 0.0)  # zero advantage -> zero policy gradient
    assert np.abs(np.asarray(g_all)).sum() > 1e-6  # ... but the entropy gradient arrives
    # The report's "wrong" form (entropy over active rows only) starves the head.
    assert np.all(np.asarray(g_act) == 0.0)


def test_entropy_bonus_weights_and_validation():
    ent = {"op": jnp.array([1.0, 2.0]), "blueprint": jnp.array([0.5, 0.5])}
    masks = {"op": jnp.array([True, True]), "blueprint": jnp.array([True, False])}
    bonus, m = per_head_entropy_bonus(ent, {"blueprint": 1.3})
    np.testing.assert_allclose(bonus, 1.5 + 1.3 * 0.5, rtol=1e-6)  # op defaults to 1.0
    np.testing.assert_allclose(m["entropy/op"], 1.5)
    bonus_act, _ = per_head_entropy_bonus(ent, {}, "active_only", masks)
    np.testing.assert_allclose(bonus_act, 1.5 + 0.5, rtol=1e-6)
    with pytest.raises(ConfigError, match="did you mean 'blueprint'"):
        per_head_entropy_bonus(ent, {"bluepront": 1.3})
    with pytest.raises(ConfigError, match="head_masks"):
        per_head_entropy_bonus(ent, {}, "active_only")


def test_joint_ratio_is_product_of_active_head_ratios():  # §5.4 decomposition
    keys = jax.random.split(jax.random.key(5), 3)
    new = {f"h{i}": v for i, v in enumerate(jax.random.normal(keys[0], (8, 32)))}
    old = {f"h{i}": v for i, v in enumerate(jax.random.normal(keys[1], (8, 32)))}
    masks = {f"h{i}": v for i, v in enumerate(jax.random.bernoulli(keys[2], 0.6, (8, 32)))}
    joint = np.exp(np.asarray(joint_log_ratio(new, old, masks), np.float64))
    prod = np.ones(32)
    for h in new:
        r = np.exp(np.asarray(new[h], np.float64) - np.asarray(old[h], np.float64))
        prod *= np.where(np.asarray(masks[h]), r, 1.0)
    np.testing.assert_allclose(joint, prod, rtol=1e-4)
    with pytest.raises(ConfigError, match="head names differ"):
        joint_log_ratio(new, {**old, "extra": old["h0"]}, masks)


def test_joint_ratio_outside_clip_range_is_clipped_and_finite():  # §5.4 joint clipping
    new = {f"head_{i}": jnp.log(jnp.array([1.15])) for i in range(8)}
    old = {f"head_{i}": jnp.zeros(1) for i in range(8)}
    masks = {h: jnp.ones(1, bool) for h in new}
    log_ratio = joint_log_ratio(new, old, masks)
    np.testing.assert_allclose(jnp.exp(log_ratio), 1.15**8, rtol=1e-5)  # ~3.06 > 1.2
    loss, m = clipped_surrogate(log_ratio, jnp.ones(1), 0.2)
    np.testing.assert_allclose(loss, -1.2, rtol=1e-6)
    assert m["ppo/clip_frac"] == 1.0
    assert jax.grad(lambda lr: clipped_surrogate(lr, jnp.ones(1), 0.2)[0])(log_ratio)[0] == 0.0


def test_clipped_surrogate_matches_numpy():
    k1, k2 = jax.random.split(jax.random.key(6))
    lr, adv = 0.4 * jax.random.normal(k1, (64,)), jax.random.normal(k2, (64,))
    loss, m = clipped_surrogate(lr, adv, 0.2)
    r, a = np.exp(np.asarray(lr, np.float64)), np.asarray(adv, np.float64)
    np.testing.assert_allclose(loss, -np.minimum(r * a, np.clip(r, 0.8, 1.2) * a).mean(), rtol=1e-5)
    np.testing.assert_allclose(m["ppo/clip_frac"], np.mean(np.abs(r - 1) > 0.2), rtol=1e-6)
    np.testing.assert_allclose(m["ppo/approx_kl"], np.mean(r - 1 - np.log(r)), rtol=1e-4)


def test_per_head_ratio_explosion_is_detected_while_joint_looks_tame():  # §5.4
    heads = [f"head_{i}" for i in range(8)]
    new = {h: jnp.log(jnp.full(4, 0.9)) for h in heads}
    new["head_3"] = jnp.log(jnp.array([10.5, 1.0, 1.0, 1.0]))
    old = {h: jnp.zeros(4) for h in heads}
    masks = {h: jnp.ones(4, bool) for h in heads}
    masks["head_7"] = jnp.zeros(4, bool)  # never active: neutral stats
    s = jax.jit(per_head_ratio_stats)(new, old, masks)
    np.testing.assert_allclose(s["ratio/head_3/max"], 10.5, rtol=1e-5)
    assert s["ratio/head_3/critical"] == 1.0 and s["ratio/head_3/warn"] == 1.0
    assert s["ratio/head_0/warn"] == 0.0
    np.testing.assert_allclose(s["ratio/head_0/mean"], 0.9, rtol=1e-6)
    assert s["ratio/head_7/max"] == 1.0 and s["ratio/head_7/active_frac"] == 0.0
    np.testing.assert_allclose(s["ratio/joint/max"], 10.5 * 0.9**6, rtol=1e-4)  # ~5.6
    assert s["ratio/joint/critical"] == 0.0 and s["ratio/joint/warn"] == 1.0


def test_q_op_stats_hand_case():  # §5.5
    q = jnp.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    s = q_op_stats(q)
    # Row variances (ddof=1) are 1 and 1; per-op means (2, 3, 4) spread 2.
    np.testing.assert_allclose(s["critic/q_variance_across_ops"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(s["critic/q_op_spread"], 2.0, rtol=1e-6)
    collapsed = q_op_stats(jnp.tile(jnp.array([[1.0], [7.0]]), (1, 6)))  # Q ignores op: V(s)
    assert collapsed["critic/q_variance_across_ops"] == 0.0 and collapsed["critic/q_op_spread"] == 0.0


def test_vmap_log_prob_matches_loop():
    logits = jax.random.normal(jax.random.key(7), (3, 10, 6))
    mask = jax.random.bernoulli(jax.random.key(8), 0.7, (3, 10, 6)).at[..., 0].set(True)
    action = jnp.zeros((3, 10), jnp.int32).at[:, ::2].set(5)
    batched = jax.jit(jax.vmap(masked_categorical_log_prob))(logits, action, mask)
    single = jax.jit(masked_categorical_log_prob)
    for i in range(3):
        np.testing.assert_allclose(batched[i], single(logits[i], action[i], mask[i]), rtol=1e-6)


def test_table_builder_rejects_unknown_names():
    with pytest.raises(ConfigError, match="did you mean 'GERMINATE'"):
        make_op_head_table(OPS, HEADS, {"GERMINAT": ["op"]})
    with pytest.raises(ConfigError, match="unknown head 'slots'"):
        make_op_head_table(OPS, HEADS, {"WAIT": ["slots"]})
    with pytest.raises(ConfigError, match="op_to_heads shape"):
        causal_head_masks(jnp.zeros(3, jnp.int32), TABLE, HEADS[:-1])


def test_error_messages_name_the_call_and_the_mismatch():
    # Exact one-line messages (mutation testing: each names its caller and the odd head).
    a = {"op": jnp.zeros(2), "slot": jnp.zeros(2)}
    b = {"op": jnp.zeros(2), "slott": jnp.zeros(2)}
    diff = (r"head names differ: \['op', 'slot'\] vs \['op', 'slott'\] "
            r"\(mismatch \['slot', 'slott'\]\) \(did you mean 'slott'\?\)$")
    with pytest.raises(ConfigError, match=r"^joint_log_ratio\(new_logp, old_logp\): " + diff):
        joint_log_ratio(a, b, a)
    with pytest.raises(ConfigError, match=r"^joint_log_ratio\(new_logp, head_masks\): " + diff):
        joint_log_ratio(a, a, b)
    with pytest.raises(ConfigError, match=r"^noop_inactive_actions\(actions, masks\): " + diff):
        noop_inactive_actions(a, b)
    with pytest.raises(ConfigError, match=r"^per_head_ratio_stats\(new_logp, old_logp\): " + diff):
        per_head_ratio_stats(a, b, a)
    with pytest.raises(ConfigError, match=r"^per_head_ratio_stats\(new_logp, masks\): " + diff):
        per_head_ratio_stats(a, a, b)
    with pytest.raises(ConfigError, match=r"^per_head_entropy_bonus\(entropies, head_masks\): "
                                          + diff):
        per_head_entropy_bonus(a, {}, "active_only", b)
    # No close match: only the mismatch list.
    with pytest.raises(ConfigError, match=r"^joint_log_ratio\(new_logp, old_logp\): head names "
                                          r"differ: \['op'\] vs \['op', 'zzz'\] "
                                          r"\(mismatch \['zzz'\]\)$"):
        joint_log_ratio({"op": jnp.zeros(2)}, {"op": jnp.zeros(2), "zzz": jnp.zeros(2)},
                        {"op": jnp.zeros(2)})
    with pytest.raises(ConfigError, match=r"^heads_by_op: unknown op 'GERMINAT' "
                                          r"\(did you mean 'GERMINATE'\?\)$"):
        make_op_head_table(OPS, HEADS, {"GERMINAT": ["op"]})
    with pytest.raises(ConfigError, match=r"^heads_by_op\['WAIT'\]: unknown head 'slots' "
                                          r"\(did you mean 'slot'\?\)$"):
        make_op_head_table(OPS, HEADS, {"WAIT": ["slots"]})
    with pytest.raises(ConfigError, match=r"^op_to_heads shape \(6, 8\) != \[n_ops, 7\] for "
                                          r"heads \['op', 'slot', 'blueprint', 'style', 'tempo', "
                                          r"'alpha_target', 'alpha_speed'\]$"):
        causal_head_masks(jnp.zeros(3, jnp.int32), TABLE, HEADS[:-1])
    with pytest.raises(ConfigError, match=r"^op_to_heads shape \(8,\) != \[n_ops, 8\]"):
        causal_head_masks(jnp.zeros(3, jnp.int32), TABLE[0], HEADS)
    with pytest.raises(ConfigError, match=r"^entropy mode='active' is not one of "
                                          r"\('all', 'active_only'\)$"):
        per_head_entropy_bonus(a, {}, "active")
    with pytest.raises(ConfigError, match=r"^entropy coef for unknown head 'slott' "
                                          r"\(did you mean 'slot'\?\)$"):
        per_head_entropy_bonus(a, {"slott": 1.0})
    with pytest.raises(ConfigError, match=r"^per_head_entropy_bonus\(mode='active_only'\) "
                                          r"needs head_masks$"):
        per_head_entropy_bonus(a, {}, "active_only")


def test_log_prob_and_entropy_use_the_last_axis_for_any_rank():
    # [T, B, A] logits (a rollout): the softmax, the gather and the entropy sum run over A.
    logits = jax.random.normal(jax.random.key(9), (4, 3, 5))
    mask = jax.random.bernoulli(jax.random.key(10), 0.6, (4, 3, 5)).at[..., 2].set(True)
    action = jax.random.randint(jax.random.key(11), (4, 3), 0, 5)
    lg = np.where(np.asarray(mask), np.asarray(logits, np.float64), -1e9)
    logp = scipy.special.log_softmax(lg, axis=-1)
    want = np.take_along_axis(logp, np.asarray(action)[..., None], -1)[..., 0]
    np.testing.assert_allclose(masked_categorical_log_prob(logits, action, mask), want,
                               rtol=1e-5, atol=1e-5)
    p = np.exp(logp)
    np.testing.assert_allclose(masked_categorical_entropy(logits, mask),
                               -(p * np.where(p > 0, logp, 0.0)).sum(-1), rtol=1e-5, atol=1e-6)
    # An invalid action scores MASK_LOGIT (-1e9) minus the valid log-normaliser: finite, ~-1e9.
    lp = masked_categorical_log_prob(jnp.zeros((1, 3)), jnp.array([2]),
                                     jnp.array([[True, True, False]]))
    assert np.isfinite(lp).all() and lp[0] == np.float32(-1e9 - np.log(2.0))


def test_clipped_surrogate_metric_keys_and_values():
    lr = jnp.log(jnp.array([0.5, 1.0, 1.5, 1.1]))
    adv = jnp.array([1.0, -1.0, 2.0, 0.5])
    loss, m = clipped_surrogate(lr, adv, 0.2)
    assert set(m) == {"ppo/policy_loss", "ppo/clip_frac", "ppo/approx_kl", "ppo/ratio_mean",
                      "ppo/ratio_max", "ppo/ratio_min"}
    assert m["ppo/policy_loss"] == loss
    # min(r A, clip(r) A): 0.5*1 ; -1 ; min(3, 2.4) = 2.4 ; 0.55
    np.testing.assert_allclose(loss, -(0.5 - 1.0 + 2.4 + 0.55) / 4, rtol=1e-6)
    np.testing.assert_allclose([m["ppo/ratio_max"], m["ppo/ratio_min"], m["ppo/ratio_mean"]],
                               [1.5, 0.5, 1.025], rtol=1e-6)
    np.testing.assert_allclose(m["ppo/clip_frac"], 0.5)
    # |r - 1| > eps is strict: r == 1 exactly with eps == 0 is not clipped.
    assert clipped_surrogate(jnp.zeros(3), jnp.ones(3), 0.0)[1]["ppo/clip_frac"] == 0.0


def test_ratio_stats_use_active_rows_only_and_report_defaults():
    log = lambda *r: jnp.log(jnp.array(r, jnp.float32)) - 0.75  # noqa: E731
    new = {"a": log(2.0, 0.5, 100.0), "b": log(4.0, 0.01, 0.01), "c": log(3.5, 1.0, 1.0)}
    old = {h: jnp.full(3, -0.75) for h in new}  # ratio = exp(new - old)
    masks = {"a": jnp.array([True, True, False]),   # the inactive 100 must not count
             "b": jnp.array([True, False, False]),  # exactly one active row
             "c": jnp.array([True, True, True])}
    s = per_head_ratio_stats(new, old, masks)       # default thresholds: warn 3, critical 10
    names = ("max", "min", "mean", "active_frac", "warn", "critical")
    assert set(s) == {f"ratio/{h}/{n}" for h in ("a", "b", "c", "joint") for n in names}
    got = {k: float(v) for k, v in s.items()}
    want = {"ratio/a/max": 2.0, "ratio/a/min": 0.5, "ratio/a/mean": 1.25,
            "ratio/a/active_frac": 2 / 3, "ratio/a/warn": 0.0, "ratio/a/critical": 0.0,
            "ratio/b/max": 4.0, "ratio/b/min": 4.0, "ratio/b/mean": 4.0,
            "ratio/b/active_frac": 1 / 3, "ratio/b/warn": 1.0, "ratio/b/critical": 0.0,
            "ratio/c/max": 3.5, "ratio/c/min": 1.0, "ratio/c/mean": 11.0 / 6.0,
            "ratio/c/warn": 1.0, "ratio/c/critical": 0.0}
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-5, err_msg=k)
    # Joint over all rows: row 0 = 2 * 4 * 3.5 = 28 (critical), row 1 = 0.5, row 2 = 1.
    np.testing.assert_allclose([got["ratio/joint/max"], got["ratio/joint/min"]], [28.0, 0.5],
                               rtol=1e-5)
    assert got["ratio/joint/critical"] == 1.0 and got["ratio/joint/active_frac"] == 1.0
    # Thresholds are strict: a ratio of exactly 1 with warn = critical = 1 raises neither.
    flat = per_head_ratio_stats({"a": jnp.zeros(2)}, {"a": jnp.zeros(2)},
                                {"a": jnp.ones(2, bool)}, warn=1.0, critical=1.0)
    assert flat["ratio/a/warn"] == 0.0 and flat["ratio/a/critical"] == 0.0
    # A head never active reports the neutral ratio 1 for max, min and mean.
    idle = per_head_ratio_stats({"a": jnp.log(jnp.array([5.0, 0.2]))}, {"a": jnp.zeros(2)},
                                {"a": jnp.zeros(2, bool)})
    assert [float(idle[f"ratio/a/{n}"]) for n in ("max", "min", "mean")] == [1.0, 1.0, 1.0]


def test_entropy_bonus_metrics_keys():
    ent = {"op": jnp.array([1.0, 3.0]), "slot": jnp.array([0.5, 0.5])}
    bonus, m = per_head_entropy_bonus(ent, {"slot": 2.0})
    assert set(m) == {"entropy/op", "entropy/slot", "entropy/bonus"}
    assert m["entropy/bonus"] == bonus == 3.0
