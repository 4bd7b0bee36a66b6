"""SAC config validation, registry and spec checks: bad input rejected before tracing."""

import math

import pytest

from rlstab_jax.agents import registry
from rlstab_jax.agents.sac import DroQConfig, SACConfig, TQCConfig, make_agent
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import extract_hparams, hparam_names
from rlstab_jax.envs.spec import EnvSpec

VEC = EnvSpec("v", (3,), "float32", "continuous", 2, (-1.0, -1.0), (1.0, 1.0))
PIX = EnvSpec("p", (8, 8, 3), "uint8", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
              ("steer", "gas", "brake"))


def test_registry_names_and_presets():
    for name, cls in (("sac", SACConfig), ("droq", DroQConfig), ("tqc", TQCConfig)):
        entry = registry.get(name)
        assert entry.config_cls is cls and entry.kind == "off_policy"
    d, t = DroQConfig(), TQCConfig()
    assert (d.utd, d.policy_delay, d.layer_norm, d.dropout) == (20, 20, True, 0.01)
    assert (t.critic_kind, t.n_quantiles, t.drop_per_critic) == ("tqc", 25, 2)


def test_hparams_are_the_numeric_fields():
    names = set(hparam_names(SACConfig))
    assert {"actor_lr", "critic_lr", "alpha_lr", "gamma", "tau", "init_alpha", "alpha_floor",
            "target_entropy_total", "backup_clip", "actor_grad_clip", "critic_grad_clip",
            "log_std_min", "log_std_max", "adam_b1", "adam_b2"} <= names
    assert not names & {"utd", "n_critics", "dropout", "actor_hidden"}
    hp = extract_hparams(SACConfig())
    assert math.isnan(float(hp["target_entropy_total"]))
    assert set(SACConfig().architecture_keys()) >= {"actor_hidden", "n_critics", "encoder"}


@pytest.mark.parametrize("kw, pattern", [
    (dict(gamma=1.0), r"agent\.gamma=1\.0 must be in \[0, 1\)"),
    (dict(tau=0.0), r"agent\.tau=0\.0"),
    (dict(actor_lr=-1.0), r"agent\.actor_lr=-1\.0 must be"),
    (dict(log_std_min=3.0), r"agent\.log_std_min=3\.0 must be finite and below"),
    (dict(log_std_init=5.0), r"agent\.log_std_init=5\.0 must be inside"),
    (dict(alpha_floor=2.0), r"agent\.alpha_floor=2\.0 must be below agent\.init_alpha"),
    (dict(target_entropy_total=-math.inf), r"agent\.target_entropy_total"),
    (dict(adam_b2=1.0), r"agent\.adam_b2=1\.0"),
    (dict(backup_clip=math.inf), r"agent\.backup_clip=inf must be finite"),
    (dict(n_critics=0), r"agent\.n_critics=0"),
    (dict(critic_subset=3), r"agent\.critic_subset=3 must be in \[0, agent\.n_critics=2\]"),
    (dict(critic_kind="tqc", drop_per_critic=25), r"agent\.drop_per_critic=25"),
    (dict(critic_kind="dist"), r"agent\.critic_kind='dist' must be one of"),
    (dict(std_head="shared"), r"agent\.std_head='shared'"),
    (dict(log_std_param="softplus"), r"agent\.log_std_param"),
    (dict(alpha_mode="vector"), r"agent\.alpha_mode"),
    (dict(dropout=1.0), r"agent\.dropout=1\.0"),
    (dict(utd=0), r"agent\.utd=0 must be >= 1"),
    (dict(actor_hidden=()), r"agent\.actor_hidden=\(\) must be a non-empty"),
    (dict(activation="swish"), r"agent\.activation='swish'"),
    (dict(context_len=2, encoder="cnn"), r"agent\.context_len=2 needs vector observations"),
    (dict(context_dim=30), r"agent\.context_dim=30 must be divisible"),
    (dict(cnn_kernels=(3,)), r"agent\.cnn_channels"),
])
def test_validate_rejects_bad_values(kw, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        make_agent(SACConfig(**kw), VEC)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["sac", "droq", "tqc"])
def test_discrete_spec_raises(name):
    spec = EnvSpec("CartPole-v1", (4,), "float32", "discrete", 2)
    with pytest.raises(ConfigError, match=rf"agent '{name}' needs a continuous \(Box\)"):
        make_agent(registry.get(name).config_cls(), spec)


def test_unbounded_box_raises():
    spec = EnvSpec("u", (3,), "float32", "continuous", 1, (-math.inf,), (math.inf,))
    with pytest.raises(ConfigError, match="bounded Box"):
        make_agent(SACConfig(), spec)


@pytest.mark.parametrize("kw, spec, pattern", [
    (dict(), PIX, r"^agent\.encoder='mlp' cannot read pixel observations of shape \(8, 8, 3\) "
                  r"from env 'p'; use agent\.encoder=cnn$"),
    (dict(encoder="cnn"), VEC, r"^agent\.encoder='cnn' needs \[H, W, C\] pixels but env 'v' has "
                               r"observations of shape \(3,\); use agent\.encoder=mlp$"),
    (dict(context_len=4), VEC, r"^agent\.context_len=4: env 'v' observation size 3 is not "
                               r"O \+ 4\*\(O \+ 2\) .*HistoryContext\(env, 4\) "
                               r"\(set env\.history=4\)$"),
])
def test_encoder_spec_mismatch(kw, spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        make_agent(SACConfig(**kw), spec)


def test_agent_fields_follow_config():
    agent = make_agent(DroQConfig(batch_size=64, n_step=3), VEC)
    assert (agent.updates_per_step, agent.batch_size, agent.n_step) == (20, 64, 3)
    assert agent.kind == "off_policy"


def test_context_spec_accepted_and_action_names_checked():
    # O = 3 obs + 2 history steps of (obs 3 + action 2): 13 = 3 + 2 * 5 is a valid context obs.
    ctx = EnvSpec("c", (13,), "float32", "continuous", 2, (-1.0, -1.0), (1.0, 1.0))
    make_agent(SACConfig(context_len=2, context_dim=8, context_heads=2), ctx)
    bad = EnvSpec("n", (3,), "float32", "continuous", 2, (-1.0, -1.0), (1.0, 1.0),
                  ("steer", "gas", "brake"))
    with pytest.raises(ConfigError, match=r"^env 'n' names 3 action dims but has 2$"):
        make_agent(SACConfig(), bad)


def test_cnn_encoder_accepts_pixels():
    # The accepting side of the encoder/spec check (make_agent builds, nothing traced).
    agent = make_agent(SACConfig(encoder="cnn", cnn_channels=(4,), cnn_kernels=(3,),
                                 cnn_strides=(2,)), PIX)
    assert agent.kind == "off_policy"
