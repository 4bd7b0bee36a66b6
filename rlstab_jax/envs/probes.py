"""Probe environments: tiny envs with known answers that localise agent bugs.

After Andy Jones' "Debugging RL, without the agonizing pain" and TESTING.md pattern 10. Each
probe is a gymnax ``Environment`` in a discrete (``Discrete(2)``) and a continuous
(``Box(-1, 1, (1,))``) variant. Observations are float32 of shape ``[1]`` in ``[-1, 1]``.
Names: ``probe/{constant,obs,delayed,action,obs-action,never-ending}-{discrete,continuous}``.

After a terminal step the final observation (``info["final_observation"]``) repeats the
state's observation, so an agent that bootstraps through ``terminated`` learns a clearly wrong
value (e.g. ``1/(1-gamma)`` instead of 1) rather than something that depends on an untrained
input. Continuous actions are clipped to ``[-1, 1]`` before the reward is computed.

Expected answers (``expected_value``, ``expected_q``, ``optimal_action``), with V the optimal
value and Q(o, a) the action value:

=================  ==========================  ===========================================
probe              V*(obs)                     Q(obs, a) / optimal action
=================  ==========================  ===========================================
constant           1                           1 (any action)
obs                obs (= +-1)                 obs (any action)
delayed            obs 0: gamma, obs 1: 1       same (any action)
action             1                           discrete: +1 if a == 1 else -1;
                                               continuous: 1 - (a - 0.5)**2, a* = 0.5
obs-action         1                           discrete: +1 if a == (obs > 0) else -1;
                                               continuous: 1 - (a - 0.5*obs)**2, a* = 0.5*obs
never-ending       1/(1-gamma)                 1/(1-gamma) (any action)
=================  ==========================  ===========================================

Field report: none yet; the probe suite is the fast CI gate every agent passes (TESTING.md 10).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlstab_jax.config.errors import ConfigError, did_you_mean


@struct.dataclass
class ProbeState(environment.EnvState):
    """State of every probe: step count and the current observation ``[1]`` float32."""

    time: jax.Array
    obs: jax.Array


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Probe parameters. Terminating probes end before the limit (no truncation by default)."""

    max_steps_in_episode: int = 10


class _Probe(environment.Environment[ProbeState, EnvParams]):
    """Shared machinery; subclasses override the ``_`` hooks and the answer methods."""

    base_name: str = ""
    episode_length: int | None = 1  # steps until ``terminated``; None = never terminates
    default_max_steps: int = 10

    def __init__(self, continuous: bool = False):
        super().__init__()
        self.continuous = bool(continuous)
        self.obs_shape = (1,)

    # Static `self` in jax.jit hashes the env: equal configs share one compiled step.
    def __hash__(self) -> int:
        return hash((type(self), self.continuous))

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and self.continuous == other.continuous

    # ---- hooks -----------------------------------------------------------------------
    def _reset_obs(self, key: jax.Array) -> jax.Array:
        del key
        return jnp.zeros((1,), jnp.float32)

    def _next_obs(self, obs: jax.Array, time: jax.Array) -> jax.Array:
        del time
        return obs

    def q_value(self, obs: jax.Array, action: jax.Array, gamma: Any) -> jax.Array:
        """Q(obs, a) for ``obs [..., 1]`` and actions ``[...]`` (discrete) / ``[..., 1]``."""
        del action
        return self.value(obs, gamma)

    def value(self, obs: jax.Array, gamma: Any) -> jax.Array:
        """Optimal value V*(obs) ``[...]`` for ``obs [..., 1]``."""
        raise NotImplementedError

    def best_action(self, obs: jax.Array) -> jax.Array:
        """Optimal action: ``[...]`` int32 (discrete) or ``[..., 1]`` float32 (continuous)."""
        raise ValueError(f"{self.name} is action-independent: every action is optimal")

    # ---- gymnax API --------------------------------------------------------------------
    def _action(self, action: Any) -> jax.Array:
        """Continuous: ``[1]`` float32 clipped to [-1, 1]; discrete: ``[]`` int32."""
        if self.continuous:
            return jnp.clip(jnp.asarray(action, jnp.float32).reshape((1,)), -1.0, 1.0)
        return jnp.asarray(action).reshape(()).astype(jnp.int32)

    def _reward(self, obs: jax.Array, action: jax.Array, time: jax.Array) -> jax.Array:
        # One-step probes: reward == Q. Never-ending: reward == V at gamma 0 == 1.
        del time
        return self.q_value(obs, action, 0.0)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.default_max_steps)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, ProbeState]:
        obs = self._reset_obs(key)
        return obs, ProbeState(time=jnp.asarray(0, jnp.int32), obs=obs)

    def step_env(self, key: jax.Array, state: ProbeState, action: Any, params: EnvParams):
        del key
        reward = self._reward(state.obs, self._action(action), state.time)
        reward = reward.astype(jnp.float32).reshape(())
        time = state.time + 1
        state = ProbeState(time=time, obs=self._next_obs(state.obs, time))
        terminated = self.is_terminated(state, params)
        info = {"discount": 1.0 - terminated.astype(jnp.float32)}
        return state.obs, state, reward, terminated, info

    def get_obs(self, state: ProbeState, params=None, key=None) -> jax.Array:
        return state.obs

    def is_terminated(self, state: ProbeState, params: EnvParams) -> jax.Array:
        if self.episode_length is None:
            return jnp.asarray(False)
        return state.time >= self.episode_length

    @property
    def name(self) -> str:
        return f"{self.base_name}-{'continuous' if self.continuous else 'discrete'}"

    @property
    def num_actions(self) -> int:
        return 1 if self.continuous else 2

    def action_space(self, params: EnvParams | None = None) -> spaces.Space:
        if self.continuous:
            return spaces.Box(-1.0, 1.0, (1,), jnp.float32)
        return spaces.Discrete(2)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


def _o(obs: jax.Array) -> jax.Array:
    """``[..., 1]`` observation -> ``[...]`` float32."""
    return jnp.asarray(obs, jnp.float32)[..., 0]


def _random_sign(key: jax.Array) -> jax.Array:
    """``[1]`` float32, +1 or -1 with probability 1/2."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (1,)), 1.0, -1.0).astype(jnp.float32)


class ConstantReward(_Probe):
    """Obs 0, reward +1, one step. V = 1.

    Catches: a value loss that cannot fit a constant (broken optimiser, wrong loss sign,
    reward scaling/normalisation bugs). Bootstrapping through ``terminated`` gives 1/(1-gamma).
    """

    base_name = "probe/constant"

    def value(self, obs, gamma):
        return jnp.ones_like(_o(obs))


class ObsDependentReward(_Probe):
    """Obs +-1 at random, reward = obs, one step. V(obs) = obs.

    Catches: the network ignoring its input (obs not fed, wrong batch axis, obs/next_obs or
    obs/reward misalignment in the replay), sign errors. A missing terminal mask gives
    obs/(1-gamma).
    """

    base_name = "probe/obs"

    def _reset_obs(self, key):
        return _random_sign(key)

    def value(self, obs, gamma):
        return _o(obs)


class DelayedReward(_Probe):
    """Obs 0 then 1 (time), reward 0 then +1, terminated after step 2. V(0) = gamma, V(1) = 1.

    Catches: broken discounting/bootstrapping (V(0) != gamma: gamma not applied, next_obs not
    used, target computed from obs instead of next_obs) and broken masks (the final obs is 1
    again, so bootstrapping through ``terminated`` gives V(1) = 1/(1-gamma)).
    """

    base_name = "probe/delayed"
    episode_length = 2

    def _next_obs(self, obs, time):
        return jnp.minimum(time, 1).astype(jnp.float32).reshape((1,))

    def _reward(self, obs, action, time):
        return (time + 1 >= 2).astype(jnp.float32)

    def value(self, obs, gamma):
        o = _o(obs)
        return jnp.where(o > 0.5, 1.0, jnp.asarray(gamma, jnp.float32) * jnp.ones_like(o))


class ActionDependentReward(_Probe):
    """Obs 0, one step. Discrete: +1 for action 1, -1 for action 0. Continuous:
    ``1 - (a - 0.5)**2`` (a* = 0.5, inside the tanh range; a = -1 gives -1.25). V* = 1.

    Catches: the policy/actor not following the critic (wrong sign of the policy loss,
    gradient not reaching the actor, argmax over the wrong axis), and critics that ignore the
    action input. A max-entropy policy's own value is below 1 by its action variance.
    """

    base_name = "probe/action"

    def _target(self, obs):
        return 0.5 * jnp.ones_like(_o(obs))

    def q_value(self, obs, action, gamma):
        if self.continuous:
            a = jnp.asarray(action, jnp.float32)[..., 0]
            return 1.0 - (a - self._target(obs)) ** 2
        good = jnp.asarray(action) == self.best_action(obs)
        return jnp.where(good, 1.0, -1.0).astype(jnp.float32)

    def value(self, obs, gamma):
        return jnp.ones_like(_o(obs))

    def best_action(self, obs):
        if self.continuous:
            return self._target(obs)[..., None]
        return jnp.ones(_o(obs).shape, jnp.int32)


class ObsActionDependentReward(ActionDependentReward):
    """Obs +-1 at random, one step. Discrete: +1 if action == (obs > 0) else -1. Continuous:
    ``1 - (a - 0.5*obs)**2`` (a* = 0.5*obs). V* = 1.

    Catches: actor or critic not conditioning on both obs and action (concat on the wrong axis,
    broadcasting a batch of obs against one action), policy gradients with the wrong sign.
    """

    base_name = "probe/obs-action"

    def _reset_obs(self, key):
        return _random_sign(key)

    def _target(self, obs):
        return 0.5 * _o(obs)

    def best_action(self, obs):
        if self.continuous:
            return self._target(obs)[..., None]
        return (_o(obs) > 0).astype(jnp.int32)


class NeverEndingConstant(_Probe):
    """Obs 0, reward +1 every step, never terminates, truncated at ``max_steps_in_episode``
    (default 20). V = 1/(1-gamma): the "infinite horizon" check.

    Catches: treating truncation as termination. With the bootstrap cut at every 20th step
    the TD fixed point for an obs-blind value is 1/(1 - gamma*19/20) (~16.8 at gamma 0.99,
    versus 100); bootstrapping from the reset obs instead of ``final_observation`` is harmless
    here (both are 0), so pair it with a replay test for that.
    """

    base_name = "probe/never-ending"
    episode_length = None
    default_max_steps = 20

    def value(self, obs, gamma):
        return jnp.ones_like(_o(obs)) / (1.0 - jnp.asarray(gamma, jnp.float32))


class ProbeEntry(NamedTuple):
    """``PROBES`` value: the env class and its constructor kwargs."""

    cls: type[_Probe]
    kwargs: dict[str, Any]


_CLASSES = (ConstantReward, ObsDependentReward, DelayedReward, ActionDependentReward,
            ObsActionDependentReward, NeverEndingConstant)

PROBES: dict[str, ProbeEntry] = {
    f"{c.base_name}-{kind}": ProbeEntry(c, {"continuous": kind == "continuous"})
    for c in _CLASSES for kind in ("discrete", "continuous")
}

#: Probes whose reward depends on the action (``optimal_action`` is defined for these only).
ACTION_PROBES: tuple[str, ...] = tuple(
    n for n, e in PROBES.items() if issubclass(e.cls, ActionDependentReward))


def _env(name: str) -> _Probe:
    if name not in PROBES:
        raise ConfigError(f"unknown probe env {name!r}{did_you_mean(name, PROBES)}; "
                          f"known: {', '.join(PROBES)}")
    entry = PROBES[name]
    return entry.cls(**entry.kwargs)


def make_probe(name: str, **param_overrides: Any) -> tuple[_Probe, EnvParams]:
    """Build a probe env and its params (``param_overrides`` e.g. ``max_steps_in_episode``).

    Raises:
      ConfigError: one line, for an unknown name (with a close match if any).
    """
    env = _env(name)
    return env, env.default_params.replace(**param_overrides)


def expected_value(name: str, obs: jax.Array, gamma: Any) -> jax.Array:
    """Optimal value V*(obs) ``[...]`` for ``obs [..., 1]`` (see the module table)."""
    return _env(name).value(obs, gamma)


def expected_q(name: str, obs: jax.Array, action: jax.Array, gamma: Any) -> jax.Array:
    """Action value Q(obs, a) ``[...]``; action ``[...]`` int (discrete) or ``[..., 1]``."""
    return _env(name).q_value(obs, action, gamma)


def optimal_action(name: str, obs: jax.Array) -> jax.Array:
    """Optimal action for ``obs [..., 1]``: ``[...]`` int32 or ``[..., 1]`` float32.

    Raises:
      ValueError: for probes whose reward ignores the action (not in ``ACTION_PROBES``).
    """
    return _env(name).best_action(obs)
