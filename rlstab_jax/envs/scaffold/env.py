"""``Scaffold-v0``: a pure-JAX (gymnax 1.x) long-horizon env with factored actions.

Modelled on field report 004's setting: a host model with ``n_slots`` slots where seeds
(small modules) germinate, train, blend in and are fossilised or pruned. Credit is delayed: a
seed pays off only after it has trained and been blended in, tens of steps after GERMINATE,
and a seed can *scaffold* (speed up) seeds germinated after it before it is pruned.

Action: int32 ``[8]``, one entry per head (report 004's heads)::

    op           6  WAIT, GERMINATE, ADVANCE, SET_ALPHA, PRUNE, FOSSILIZE
    slot         n_slots
    blueprint    n_blueprints   seed architecture (GERMINATE)
    style        4              blend style (GERMINATE, SET_ALPHA)
    tempo        3              training tempo x0.5 / x1 / x2 (GERMINATE)
    alpha_target 3              blend target 0.33 / 0.66 / 1.0 (GERMINATE, SET_ALPHA)
    alpha_speed  4              alpha change per step 0.02 / 0.05 / 0.1 / 0.25 (SET_ALPHA, PRUNE)
    alpha_curve  5              shock multiplier of a change 0.5 .. 1.5 (SET_ALPHA, PRUNE)

``OP_HEADS`` is the op -> active-heads table (report 004 §2); heads a op does not use are
ignored by the env. Slot stages: EMPTY, TRAINING, BLENDING, PRUNING, FOSSILIZED.

Dynamics per step (``dt`` = 1 step, horizon ``max_steps_in_episode`` = 150):

- GERMINATE (empty slot): stage TRAINING with blueprint ``b``, style, tempo, alpha target.
  Its quality ``q`` grows ``q += rate * (q_max - q)`` while TRAINING or BLENDING, with
  ``rate = base_rate * tempo_mult * (1 + scaffold_gain * sum of q of the other live or
  fossilised seeds germinated earlier)`` -- the scaffolding effect. ``q_max = fit[b] *
  (1 if style == task_style else style_penalty) * (tempo x2: rushed_penalty)``; ``fit`` is
  ``blueprint_fit`` plus per-episode noise, ``task_style`` is drawn per episode and shown in
  the observation.
- ADVANCE (TRAINING for >= ``min_train_steps``): stage BLENDING; alpha moves toward the target
  at the seed's alpha speed (default speed index 1).
- SET_ALPHA (BLENDING): new style, alpha target, speed and curve.
- PRUNE (TRAINING/BLENDING): stage PRUNING, alpha goes to 0 at the chosen speed, then EMPTY.
- FOSSILIZE (BLENDING with alpha >= 0.5): the contribution ``alpha * q`` is frozen for the
  rest of the episode; the slot stays occupied and pays no rent.
- Host accuracy ``acc = base_acc + contrib_scale * sum(alpha * q) - shock``; ``shock`` is the
  transient drop ``shock_scale * |d alpha| * (1 - q) * curve_mult`` from blending an immature
  seed fast. Reward ``= reward_scale * (acc_t - acc_{t-1}) - rent * (#TRAINING + BLENDING
  seeds)``: dense, but a GERMINATE only pays back after training and blending.
- An invalid action (e.g. ADVANCE on an empty slot) does nothing; ``last_action_success = 0``.

Observation ``[F + n_slots + M]`` float32: features ``F``, then the blueprint id of each slot
(``0`` = empty, ``b + 1``; for the embedding), then the validity masks ``M = sum(head sizes)``::

    base:  t / T, acc, last_action_success, last op one-hot (6), task style one-hot (4),
           live seeds / n_slots                                         (14)
    slot:  stage one-hot (5), q, alpha, alpha target, min(age / T, 1), trained enough,
           style one-hot (4), tempo one-hot (3), scaffold bonus         (18 per slot)

Masks (per state): op: WAIT always, others when some slot allows them; slot: slots that allow
some valid op; blueprint: a per-episode available subset (index 0 always available); other
heads: all valid. Episodes end only by truncation at the horizon.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlstab_jax.envs.spec import EnvSpec

OPS = ("WAIT", "GERMINATE", "ADVANCE", "SET_ALPHA", "PRUNE", "FOSSILIZE")
WAIT, GERMINATE, ADVANCE, SET_ALPHA, PRUNE, FOSSILIZE = range(6)
HEADS = ("op", "slot", "blueprint", "style", "tempo", "alpha_target", "alpha_speed",
         "alpha_curve")
# Field report 004 §2: blueprint and tempo only for GERMINATE; style and alpha_target for
# GERMINATE | SET_ALPHA; alpha_speed / alpha_curve for SET_ALPHA | PRUNE; slot for all but WAIT.
OP_HEADS: tuple[tuple[str, ...], ...] = (
    ("op",),
    ("op", "slot", "blueprint", "style", "tempo", "alpha_target"),
    ("op", "slot"),
    ("op", "slot", "style", "alpha_target", "alpha_speed", "alpha_curve"),
    ("op", "slot", "alpha_speed", "alpha_curve"),
    ("op", "slot"),
)
EMPTY, TRAINING, BLENDING, PRUNING, FOSSILIZED = range(5)
N_STAGES = 5
N_STYLES, N_TEMPOS, N_TARGETS, N_SPEEDS, N_CURVES = 4, 3, 3, 4, 5
TEMPO_MULT = (0.5, 1.0, 2.0)
ALPHA_TARGETS = (0.33, 0.66, 1.0)
ALPHA_SPEEDS = (0.02, 0.05, 0.1, 0.25)
CURVE_MULT = (0.5, 0.75, 1.0, 1.25, 1.5)
BASE_FEATURES = 14
SLOT_FEATURES = 18


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Scaffold parameters (horizon, ``n_slots``, ``n_blueprints`` are static: shapes)."""

    max_steps_in_episode: int = struct.field(pytree_node=False, default=150)
    n_slots: int = struct.field(pytree_node=False, default=3)
    n_blueprints: int = struct.field(pytree_node=False, default=5)
    blueprint_fit: tuple[float, ...] = struct.field(
        pytree_node=False, default=(0.35, 0.5, 0.9, 0.65, 0.45))
    fit_noise: float = 0.15
    p_blueprint_available: float = 0.7
    style_penalty: float = 0.6
    rushed_penalty: float = 0.8
    base_rate: float = 0.04
    scaffold_gain: float = 1.5
    min_train_steps: int = 10
    base_acc: float = 0.3
    contrib_scale: float = 0.25
    shock_scale: float = 0.5
    rent: float = 0.003
    reward_scale: float = 10.0


@struct.dataclass
class EnvState(environment.EnvState):
    stage: jax.Array  # [S] int32
    blueprint: jax.Array  # [S] int32 (valid when not EMPTY)
    style: jax.Array  # [S] int32
    tempo: jax.Array  # [S] int32
    target: jax.Array  # [S] int32 alpha target index
    speed: jax.Array  # [S] int32
    curve: jax.Array  # [S] int32
    q: jax.Array  # [S] float32 quality
    alpha: jax.Array  # [S] float32
    age: jax.Array  # [S] int32 steps since germination
    born: jax.Array  # [S] int32 step of germination (order for scaffolding)
    frozen: jax.Array  # [S] float32 fossilised contribution
    fit: jax.Array  # [B] float32 this episode's blueprint fit
    available: jax.Array  # [B] bool blueprints available this episode
    task_style: jax.Array  # int32
    acc: jax.Array  # float32
    last_success: jax.Array  # bool
    last_op: jax.Array  # int32
    alpha_hist: jax.Array  # [T, S] float32 (for render)
    stage_hist: jax.Array  # [T, S] int32 (for render)
    time: int


def head_sizes(params: EnvParams) -> tuple[int, ...]:
    return (len(OPS), params.n_slots, params.n_blueprints, N_STYLES, N_TEMPOS, N_TARGETS,
            N_SPEEDS, N_CURVES)


def _slot_op_valid(state: EnvState, params: EnvParams) -> jax.Array:
    """``[n_ops, S]`` bool: op o can act on slot s (WAIT row: all False)."""
    st = state.stage
    live = (st == TRAINING) | (st == BLENDING)
    rows = [
        jnp.zeros_like(live),
        st == EMPTY,
        (st == TRAINING) & (state.age >= params.min_train_steps),
        st == BLENDING,
        live,
        (st == BLENDING) & (state.alpha >= 0.5),
    ]
    return jnp.stack(rows)


def action_masks(state: EnvState, params: EnvParams) -> dict[str, jax.Array]:
    """Per-state validity masks ``{head: [k] bool}`` (the ones in the observation)."""
    so = _slot_op_valid(state, params)
    op = so.any(-1).at[WAIT].set(True)
    slot = (so[1:] & op[1:, None]).any(0)
    masks = {"op": op, "slot": slot, "blueprint": state.available}
    for h, k in zip(HEADS[3:], head_sizes(params)[3:]):
        masks[h] = jnp.ones((k,), bool)
    return masks


class Scaffold(environment.Environment[EnvState, EnvParams]):
    """The scaffold env (see the module docstring)."""

    def __hash__(self) -> int:
        return hash(type(self))

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return "Scaffold-v0"

    @property
    def num_actions(self) -> int:
        return len(HEADS)

    def action_names(self, params: EnvParams | None = None) -> tuple[str, ...]:
        return HEADS

    def n_features(self, params: EnvParams) -> int:
        return BASE_FEATURES + SLOT_FEATURES * params.n_slots

    def obs_dim(self, params: EnvParams) -> int:
        return self.n_features(params) + params.n_slots + sum(head_sizes(params))

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = params or self.default_params
        return spaces.Box(0, max(head_sizes(params)) - 1, (len(HEADS),), jnp.int32)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = params or self.default_params
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim(params),), jnp.float32)

    def env_spec(self, params: EnvParams, env_id: str = "Scaffold-v0") -> EnvSpec:
        sizes = head_sizes(params)
        return EnvSpec(env_id, (self.obs_dim(params),), "float32", "factored", len(sizes),
                       action_names=HEADS, max_episode_steps=int(params.max_steps_in_episode),
                       action_nvec=sizes, op_heads=OP_HEADS, obs_mask=True,
                       obs_ids=(params.n_slots, params.n_blueprints + 1), op_names=OPS)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        S, B, T = params.n_slots, params.n_blueprints, params.max_steps_in_episode
        k_fit, k_av, k_style = jax.random.split(key, 3)
        base = jnp.asarray(params.blueprint_fit[:B], jnp.float32)
        fit = jnp.clip(base + params.fit_noise * jax.random.uniform(k_fit, (B,), minval=-1.0,
                                                                      maxval=1.0), 0.05, 1.0)
        avail = jax.random.bernoulli(k_av, params.p_blueprint_available, (B,)).at[0].set(True)
        zi = jnp.zeros((S,), jnp.int32)
        zf = jnp.zeros((S,), jnp.float32)
        state = EnvState(
            stage=zi, blueprint=zi, style=zi, tempo=zi, target=zi, speed=zi + 1, curve=zi + 2,
            q=zf, alpha=zf, age=zi, born=zi, frozen=zf, fit=fit, available=avail,
            task_style=jax.random.randint(k_style, (), 0, N_STYLES),
            acc=jnp.asarray(params.base_acc, jnp.float32), last_success=jnp.asarray(True),
            last_op=jnp.asarray(WAIT, jnp.int32),
            alpha_hist=jnp.zeros((int(T), S), jnp.float32),
            stage_hist=jnp.zeros((int(T), S), jnp.int32), time=0)
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams):
        a = jnp.asarray(action, jnp.int32).reshape(len(HEADS))
        op, slot = a[0], a[1]
        masks = action_masks(state, params)
        ok = masks["op"][op] & (_slot_op_valid(state, params)[op, slot] | (op == WAIT))
        ok = ok & jnp.where(op == GERMINATE, state.available[a[2]], True)
        s = state
        one = jax.nn.one_hot(slot, params.n_slots, dtype=bool) & ok
        sel = lambda cond, new, old: jnp.where(one & cond, new, old)  # noqa: E731
        g, sa, pr, ad, fo = (op == GERMINATE, op == SET_ALPHA, op == PRUNE, op == ADVANCE,
                             op == FOSSILIZE)
        stage = sel(g, TRAINING, s.stage)
        stage = sel(ad, BLENDING, stage)
        stage = sel(pr, PRUNING, stage)
        stage = sel(fo, FOSSILIZED, stage)
        blueprint = sel(g, a[2], s.blueprint)
        style = sel(g | sa, a[3], s.style)
        tempo = sel(g, a[4], s.tempo)
        target = sel(g | sa, a[5], s.target)
        speed = sel(sa | pr, a[6], sel(g, 1, s.speed))
        curve = sel(sa | pr, a[7], sel(g, 2, s.curve))
        q = sel(g, 0.0, s.q)
        alpha = sel(g, 0.0, s.alpha)
        age = sel(g, 0, s.age)
        born = sel(g, s.time, s.born)
        frozen = sel(fo, s.alpha * s.q, s.frozen)
        # quality growth with scaffolding from earlier, still present seeds
        live = (stage == TRAINING) | (stage == BLENDING)
        present = live | (stage == FOSSILIZED)
        earlier = (born[None, :] < born[:, None]) & present[None, :]
        scaffold = jnp.sum(jnp.where(earlier, q[None, :], 0.0), -1)
        tempo_mult = jnp.asarray(TEMPO_MULT)[tempo]
        q_max = (s.fit[blueprint] * jnp.where(style == s.task_style, 1.0, params.style_penalty)
                 * jnp.where(tempo == 2, params.rushed_penalty, 1.0))
        rate = params.base_rate * tempo_mult * (1.0 + params.scaffold_gain * scaffold)
        q = jnp.where(live, q + jnp.clip(rate, 0.0, 1.0) * (q_max - q), q)
        # alpha dynamics
        goal = jnp.where(stage == BLENDING, jnp.asarray(ALPHA_TARGETS)[target],
                         jnp.where(stage == PRUNING, 0.0, alpha))
        step = jnp.asarray(ALPHA_SPEEDS)[speed]
        new_alpha = alpha + jnp.clip(goal - alpha, -step, step)
        d_alpha = jnp.abs(new_alpha - alpha)
        shock = jnp.sum(params.shock_scale * d_alpha * (1.0 - q) * jnp.asarray(CURVE_MULT)[curve])
        alpha = jnp.where(stage == FOSSILIZED, s.alpha, new_alpha)
        emptied = (stage == PRUNING) & (alpha <= 0.0)
        stage = jnp.where(emptied, EMPTY, stage)
        q = jnp.where(emptied, 0.0, q)
        age = jnp.where(live, age + 1, age)
        contrib = jnp.where(stage == FOSSILIZED, frozen, alpha * q)
        acc = params.base_acc + params.contrib_scale * jnp.sum(contrib) - shock
        n_live = jnp.sum(live)
        reward = params.reward_scale * (acc - s.acc) - params.rent * n_live
        t = s.time
        new = EnvState(
            stage=stage, blueprint=blueprint, style=style, tempo=tempo, target=target,
            speed=speed, curve=curve, q=q, alpha=alpha, age=age, born=born, frozen=frozen,
            fit=s.fit, available=s.available, task_style=s.task_style, acc=acc,
            last_success=ok, last_op=op,
            alpha_hist=s.alpha_hist.at[jnp.minimum(t, s.alpha_hist.shape[0] - 1)].set(alpha),
            stage_hist=s.stage_hist.at[jnp.minimum(t, s.stage_hist.shape[0] - 1)].set(stage),
            time=t + 1)
        info = {"acc": acc, "success": ok, "shock": shock}
        return (jax.lax.stop_gradient(self.get_obs(new, params)), jax.lax.stop_gradient(new),
                jnp.asarray(reward, jnp.float32), jnp.asarray(False), info)

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        S, T = params.n_slots, params.max_steps_in_episode
        live = (state.stage == TRAINING) | (state.stage == BLENDING)
        present = live | (state.stage == FOSSILIZED)
        base = jnp.concatenate([
            jnp.stack([state.time / T, state.acc, state.last_success.astype(jnp.float32)]),
            jax.nn.one_hot(state.last_op, len(OPS)),
            jax.nn.one_hot(state.task_style, N_STYLES),
            jnp.sum(live)[None] / S,
        ])
        earlier = (state.born[None, :] < state.born[:, None]) & present[None, :]
        scaffold = jnp.sum(jnp.where(earlier, state.q[None, :], 0.0), -1)
        occupied = state.stage != EMPTY
        slot = jnp.concatenate([
            jax.nn.one_hot(state.stage, N_STAGES),
            jnp.stack([state.q, state.alpha,
                       jnp.asarray(ALPHA_TARGETS)[state.target] * occupied,
                       jnp.minimum(state.age / T, 1.0),
                       (state.age >= params.min_train_steps) * occupied,
                       ], -1),
            jax.nn.one_hot(state.style, N_STYLES) * occupied[:, None],
            jax.nn.one_hot(state.tempo, N_TEMPOS) * occupied[:, None],
            scaffold[:, None],
        ], -1).reshape(-1)
        ids = jnp.where(occupied, state.blueprint + 1, 0).astype(jnp.float32)
        masks = action_masks(state, params)
        m = jnp.concatenate([masks[h].astype(jnp.float32) for h in HEADS])
        return jnp.concatenate([base, slot, ids, m]).astype(jnp.float32)

    def is_terminal(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode
