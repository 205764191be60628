"""The workflow config: validation (JSON schema + registries) and typed per-job configs.

``load_workflow_config(raw)`` is called by the Snakefile before any job is scheduled: it
fills defaults from ``workflow/schemas/config.schema.yaml``, rejects unknown keys, wrong
types and bad values, and checks every registered name, raising one :class:`ConfigError`
naming the key, the value and the valid choices. Jobs then receive only their own slice of
the config as a frozen dataclass (``gan_run_config``), so adding a method to the config
never changes (and so never reruns) an existing job.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from adaptivemix.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_then_validate(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill_then_validate})


_Validator = _with_defaults(jsonschema.Draft7Validator)


def _schema_error(err: jsonschema.ValidationError) -> ConfigError:
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        unknown = sorted(set(err.instance) - set(known))[0]
        prefix = f"{key}." if err.absolute_path else ""
        return ConfigError(f"{prefix}{unknown}", err.instance[unknown], f"a known key: {known}")
    if err.validator == "enum":
        return ConfigError(key, err.instance, f"one of {err.validator_value}")
    if err.validator == "type":
        return ConfigError(key, err.instance, f"a value of type {err.validator_value}")
    if err.validator == "required":
        return ConfigError(key, None, f"the required keys {err.validator_value}")
    phrase = _PHRASES.get(err.validator, "a valid value").format(err.validator_value)
    return ConfigError(key, err.instance, f"{phrase} ({err.validator}={err.validator_value})")


_PHRASES = {
    "minItems": "a list of at least {} item(s)",
    "maxItems": "a list of at most {} item(s)",
    "uniqueItems": "a list without repeated items",
    "minimum": "a number ≥ {}",
    "maximum": "a number ≤ {}",
    "exclusiveMinimum": "a number > {}",
    "pattern": "a string matching {}",
}


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def load_workflow_config(raw: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Validate ``raw`` (not modified), fill defaults, check registry names; return the result."""
    config = copy.deepcopy(dict(raw))
    errors = list(_Validator(load_schema(schema_path)).iter_errors(config))
    if errors:
        raise _schema_error(jsonschema.exceptions.best_match(errors))
    check_registered_names(config)
    return config


def check_registered_names(config: dict) -> None:
    from adaptivemix.classify.config import check_classify, check_ood
    from adaptivemix.registries import ADV_LOSSES, ARCHS, BACKBONES, DATASETS

    for i, name in enumerate(config["data"]["datasets"]):
        DATASETS.get(name, f"data.datasets[{i}]").check_source(config["sources"])
    ARCHS.get(config["gan"]["arch"], "gan.arch")
    ADV_LOSSES.get(config["gan"]["adv_loss"], "gan.adv_loss")
    BACKBONES.get(config["backbone"]["name"], "backbone.name")
    DATASETS.get(config["backbone"]["dataset"], "backbone.dataset")
    check_variants(config)
    check_classify(config)
    check_ood(config)


def check_variants(config: dict) -> None:
    """Every variant name parses, every option set parses, every method fits the networks."""
    from adaptivemix.gan.methods import IncompatibleError
    from adaptivemix.gan.variants import build_variant, registered_parts
    from adaptivemix.models import build_models_on_meta

    gan = config["gan"]
    for name, options in gan["method_options"].items():
        if name not in registered_parts():
            expected = f"a method or augmentation name: {registered_parts()}"
            raise ConfigError(f"gan.method_options.{name}", options, expected)
    G, D = build_models_on_meta(gan["arch"], config["data"]["resolution"], gan)
    for i, name in enumerate(gan["methods"]):
        method, _ = build_variant(name, gan["method_options"], f"gan.methods[{i}]")
        try:
            method.check_compatible(G, D)
        except IncompatibleError as err:
            expected = f"a method that can train arch '{gan['arch']}' ({err})"
            raise ConfigError(f"gan.methods[{i}]", name, expected) from None


def check_known_keys(config_cls: type, values: dict) -> None:
    """A per-run config built from a dict refuses keys its dataclass does not have."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(unknown[0], values[unknown[0]], f"a known key: {sorted(names)}")


@dataclass(frozen=True)
class GanRunConfig:
    """Everything one GAN training run depends on (and nothing else)."""

    dataset: str  # registered dataset name
    resolution: int  # image side in pixels
    arch: str  # registered architecture family
    g_width: int  # channels of G's last stage (doubling per stage toward 4×4)
    d_width: int  # channels of D's first stage (doubling per stage toward 4×4)
    z_dim: int  # latent size
    method: str  # variant name: a registered method, then optional "+augmentation" parts
    method_options: dict  # part name -> its options (validated by its Options dataclass)
    adv_loss: str  # registered adversarial loss
    seed: int  # the only source of randomness of the run
    steps: int  # optimisation steps (one D step + one G step each)
    batch_size: int  # images per step, real and fake alike
    lr_g: float  # Adam learning rate of G
    lr_d: float  # Adam learning rate of D
    betas: tuple[float, float]  # Adam betas of both
    r1_gamma: float  # R1 weight γ (penalty γ/2·‖∇D‖²); 0 disables it
    ema_kimg: float  # half-life of G's EMA in thousands of images; 0 disables EMA
    log_every: int  # steps between log rows
    eval_every: int  # steps between FID/KID evaluations of the EMA generator
    eval_samples: int  # generated images per in-training evaluation
    checkpoint_every: int  # steps between atomic checkpoints
    device: str = "cpu"  # torch device

    @classmethod
    def from_dict(cls, values: dict) -> GanRunConfig:
        check_known_keys(cls, values)
        return cls(**dict(values, betas=tuple(values["betas"])))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"betas": list(self.betas)}


def gan_run_config(config: dict, dataset: str, method: str, seed: int) -> GanRunConfig:
    """The run's slice of a validated workflow config."""
    gan = config["gan"]
    # method_options holds every method's options: the run takes only its own, below
    shared = set(gan) & {f.name for f in dataclasses.fields(GanRunConfig)} - {"method_options"}
    own = {k: gan[k] for k in sorted(shared)}
    return GanRunConfig.from_dict(
        own
        | {
            "dataset": dataset,
            "resolution": config["data"]["resolution"],
            "method": method,
            "method_options": _own_options(gan["method_options"], method),
            "seed": int(seed),
            "device": config["device"],
        }
    )


def _own_options(all_options: dict, variant: str) -> dict:
    """The options of the variant's parts only, so other methods' options never rerun it."""
    from adaptivemix.gan.variants import parse_variant

    parts = parse_variant(variant).parts
    return {part: all_options[part] for part in parts if part in all_options}
