"""The workflow config: validation (JSON schema + registries) and typed per-job configs.

``load_workflow_config(raw)`` is called by the Snakefile before any job is scheduled: it
fills defaults from ``workflow/schemas/config.schema.yaml``, rejects unknown keys, wrong
types and bad values, and checks every registered name, raising one :class:`ConfigError`
naming the key (list items as ``gan.seeds[1]``), the value and the valid choices. Where the
schema says ``integer`` only a Python ``int`` passes: JSON schema would take ``16.0`` (and a
run would record it), so a float, even a whole one, is refused, as is a boolean.
``load_config_file`` reads a YAML file with errors naming the file and line. Jobs then
receive only their own slice of the config as a frozen dataclass (``gan_run_config``), so
adding a method to the config never changes (and so never reruns) an existing job.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from adaptivemix.errors import ConfigError, ConfigFileError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_then_validate(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    # JSON counts 16.0 as an integer; a config means a count, so only a true int is one
    # (``bool`` is an ``int`` in Python, and JSON schema already refuses it).
    type_checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(
        validator_class, {"properties": fill_then_validate}, type_checker=type_checker
    )


_Validator = _with_defaults(jsonschema.Draft7Validator)


def key_path(parts) -> str:
    """A config key from its path parts: ``gan.seeds[1]``, ``gan.experiments[0].settings``."""
    key = ""
    for part in parts:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _type_hint(value: object, expected: str) -> str:
    """Why a value that looks right has the wrong type, and how to write it."""
    if expected == "integer" and isinstance(value, float) and value.is_integer():
        return f" ({value!r} is a float: write {int(value)}, without the decimal point)"
    number = re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", str(value))
    if not (expected in ("integer", "number") and isinstance(value, str) and number):
        return ""
    if expected == "integer":
        whole = float(value).is_integer()
        return f" (a string: write {int(float(value))}, unquoted)" if whole else ""
    mantissa, e, exponent = value.lower().partition("e")
    if not e:
        return f" (a string: write {value}, unquoted)"
    mantissa += "" if "." in mantissa else ".0"
    exponent = exponent if exponent[:1] in ("+", "-") else f"+{exponent}"
    return (
        f" (YAML 1.1 reads {value} as a string: write {mantissa}e{exponent}, with a decimal "
        "point and a signed exponent)"
    )


def _schema_error(err: jsonschema.ValidationError) -> ConfigError:
    key = key_path(err.absolute_path) or "<top level>"
    if "x-expected" in err.schema:  # a key whose rule reads better in words than as a pattern
        return ConfigError(key, err.instance, err.schema["x-expected"])
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        unknown = sorted(set(err.instance) - set(known))[0]
        prefix = f"{key}." if err.absolute_path else ""
        return ConfigError(f"{prefix}{unknown}", err.instance[unknown], f"a known key: {known}")
    if err.validator == "enum":
        return ConfigError(key, err.instance, f"one of {err.validator_value}")
    if err.validator == "type":
        hint = _type_hint(err.instance, err.validator_value)
        return ConfigError(key, err.instance, f"a value of type {err.validator_value}{hint}")
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
    return copy.deepcopy(_parsed_schema(path))


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: Path) -> dict:
    """The schema parsed once per process (the DAG asks for it once per run)."""
    return yaml.safe_load(path.read_text())


MAPPING = "a YAML mapping of config keys at the top level, e.g. 'profile: myrun'"


def load_config_file(path: str | Path) -> dict:
    """The config file as a dict, or a :class:`ConfigFileError` naming the file and, for a
    YAML syntax error, the line and column. Snakemake reads ``--configfile`` itself before
    the Snakefile runs, so ``adaptivemix check-config`` (which ``make reproduce`` runs
    first) and the Snakefile's own ``config/default.yaml`` go through this."""
    path = Path(path)
    if not path.is_file():
        shipped = sorted(str(p) for p in Path("config").glob("*.yaml"))
        expected = f"an existing YAML file{f' (e.g. {shipped})' if shipped else ''}"
        raise ConfigFileError(path, "no such file", expected)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = {"line": mark.line + 1, "column": mark.column + 1} if mark else {}
        problem = err.problem or "a syntax error"
        if err.context and err.context_mark:
            at = f"line {err.context_mark.line + 1}, column {err.context_mark.column + 1}"
            problem = f"{err.context} started at {at}: {problem}"
        raise ConfigFileError(path, f"not valid YAML ({problem})", MAPPING, **where) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigFileError(path, f"not valid YAML ({err})", MAPPING) from None
    if config is None:
        raise ConfigFileError(path, "the file is empty (or holds only comments)", MAPPING)
    if not isinstance(config, dict):
        raise ConfigFileError(path, f"a {type(config).__name__} at the top level", MAPPING)
    return config


def load_workflow_config(raw: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Validate ``raw`` (not modified), fill defaults, check registry names; return the result."""
    config = schema_checked(raw, schema_path)
    check_registered_names(config)
    return config


def schema_checked(raw: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """``raw`` (not modified) validated against the JSON schema, defaults filled. Needs no
    plugin, so the workflow refuses a misspelled key or a wrong type before importing torch."""
    config = copy.deepcopy(dict(raw))
    errors = list(_Validator(load_schema(schema_path)).iter_errors(config))
    if errors:
        raise _schema_error(jsonschema.exceptions.best_match(errors))
    return config


def check_registered_names(config: dict) -> None:
    """Every name the config uses is registered and every option set parses.

    Whether local copies of real datasets and weights exist is not checked here: the
    workflow's start-up check (:mod:`adaptivemix.preflight`) lists every missing file at
    once when asked to run, so a dry run builds the whole DAG without any data present.
    """
    from adaptivemix.classify.config import check_classify, check_ood
    from adaptivemix.registries import ADV_LOSSES, BACKBONES, DATASETS

    BACKBONES.get(config["backbone"]["name"], "backbone.name")
    DATASETS.get(config["backbone"]["dataset"], "backbone.dataset")
    experiments = gan_experiments(config)
    for exp in experiments:
        where = "data.datasets" if exp["key"] == "gan" else f"{exp['key']}.datasets"
        for i, name in enumerate(exp["datasets"]):
            DATASETS.get(name, f"{where}[{i}]")
        ADV_LOSSES.get(exp["adv_loss"], f"{exp['key']}.adv_loss")
        G, D = meta_networks(exp)
        check_variants(exp, G, D, config["perceptual"])
        check_training_knobs(exp, config["device"], G)
    check_unique_runs(experiments)
    check_metric_data(config, experiments)
    check_sweeps(config)
    check_classify(config)
    check_ood(config)
    check_report(config)


REPO_ROOT = Path(__file__).resolve().parent.parent


def claims_file(config: dict) -> Path:
    """``report.claims`` as a path: absolute as given; relative to the working directory if
    the file is there, else to the repository (where the shipped ``config/claims.csv`` is)."""
    value = Path(config["report"]["claims"])
    if value.is_absolute() or value.is_file():
        return value
    return REPO_ROOT / value


def check_report(config: dict) -> None:
    """Baselines are registered methods; the claims registry exists and parses."""
    from adaptivemix.classify.methods import CLS_METHODS
    from adaptivemix.gan.methods import METHODS
    from adaptivemix.report.claims_registry import read_claims

    METHODS.get(config["report"]["baseline"]["gan"], "report.baseline.gan")
    CLS_METHODS.get(config["report"]["baseline"]["classify"], "report.baseline.classify")
    path = claims_file(config)
    if not path.is_file():
        expected = f"a claims CSV (looked in the working directory and in {REPO_ROOT})"
        raise ConfigError("report.claims", config["report"]["claims"], expected)
    try:
        read_claims(path)
    except ValueError as err:
        raise ConfigError("report.claims", str(path), f"a valid claims CSV: {err}") from None


#: Keys of the gan section that lay out the matrix rather than set a run: not in experiments.
MATRIX_KEYS = ("experiments", "sweeps")


def gan_experiments(config: dict) -> list[dict]:
    """The GAN matrix as a list of experiments, each a complete ``gan`` section.

    Every experiment holds ``arch``, ``datasets``, ``resolution`` and every other key of
    the ``gan`` section (its ``settings`` applied), plus ``key``: where it sits in the
    config, for error messages. Without ``gan.experiments`` there is one experiment:
    ``gan.arch`` on ``data.datasets`` at ``data.resolution``.
    """
    base = {k: v for k, v in config["gan"].items() if k not in MATRIX_KEYS}
    if "experiments" not in config["gan"]:
        data = config["data"]
        return [
            base | {"datasets": data["datasets"], "resolution": data["resolution"], "key": "gan"}
        ]
    experiments = []
    for i, entry in enumerate(config["gan"]["experiments"]):
        key = f"gan.experiments[{i}]"
        settings = entry["settings"]
        for name in (*MATRIX_KEYS, "arch"):
            if name in settings:
                raise ConfigError(f"{key}.settings.{name}", settings[name], "a key other than it")
        merged = copy.deepcopy(base | settings | {"arch": entry["arch"]})
        _validate_section(merged, "gan", f"{key}.settings")
        extra = {"datasets": entry["datasets"], "resolution": entry["resolution"], "key": key}
        experiments.append(merged | extra)
    return experiments


def _validate_section(values: dict, section: str, key: str) -> None:
    schema = dict(load_schema()["properties"][section])
    errors = list(_Validator(schema).iter_errors(values))
    if errors:
        err = _schema_error(jsonschema.exceptions.best_match(errors))
        raise ConfigError(f"{key}.{err.key}", err.value, err.expected)


def check_unique_runs(experiments: list[dict]) -> None:
    """No two experiments train the same (dataset, arch); a dataset has one resolution."""
    seen: dict[tuple, str] = {}
    resolution: dict[str, tuple[int, str]] = {}
    for exp in experiments:
        for name in exp["datasets"]:
            pair = (name, exp["arch"])
            if pair in seen:
                expected = f"each (dataset, arch) in one experiment only (also in {seen[pair]})"
                raise ConfigError(f"{exp['key']}.datasets", name, expected)
            seen[pair] = exp["key"]
            res, where = resolution.setdefault(name, (exp["resolution"], exp["key"]))
            if res != exp["resolution"]:
                expected = f"the resolution {res} it has in {where} (one prepared copy per dataset)"
                raise ConfigError(f"{exp['key']}.resolution", exp["resolution"], expected)


def find_experiment(config: dict, dataset: str, arch: str) -> dict:
    for exp in gan_experiments(config):
        if exp["arch"] == arch and dataset in exp["datasets"]:
            return exp
    raise ConfigError("gan.experiments", f"{dataset}/{arch}", "an experiment training it")


def dataset_resolution(config: dict, dataset: str) -> int:
    """The resolution a GAN dataset is prepared at: that of the experiment training it, else
    that of the first run measured against it (``evaluate.metric_data``), else
    data.resolution."""
    experiments = gan_experiments(config)
    for exp in experiments:
        if dataset in exp["datasets"]:
            return exp["resolution"]
    for exp in experiments:
        if any(metric_dataset(config, name) == dataset for name in exp["datasets"]):
            return exp["resolution"]
    return config["data"]["resolution"]


def metric_dataset(config: dict, dataset: str) -> str:
    """The dataset whose real statistics measure GAN runs on ``dataset``: the one
    ``evaluate.metric_data`` maps it to (stylegan2-ada/APA's ``--metricdata``), else itself."""
    return config["evaluate"]["metric_data"].get(dataset, dataset)


#: A reference of mirrored reals lives beside the plain one: ``reference/<dataset>/train-xflip/``.
XFLIP_SUFFIX = "-xflip"


def reference_reals(split: str, xflip: bool) -> str:
    """The path part naming a reference's real images: the split, + ``-xflip`` with mirrors."""
    return split + (XFLIP_SUFFIX if xflip else "")


def parse_reference_reals(reals: str) -> tuple[str, bool]:
    """(split, xflip) of a :func:`reference_reals` path part."""
    if reals.endswith(XFLIP_SUFFIX):
        return reals.removesuffix(XFLIP_SUFFIX), True
    return reals, False


def run_reference(config: dict, dataset: str, arch: str) -> dict:
    """The reference statistics a GAN run of (dataset, arch) is measured against: ``dataset``
    (its metric dataset), ``split`` (evaluate.reference_split), ``xflip`` (the experiment's
    gan.xflip: stylegan2-ada's ``--mirror`` mirrors the metric reals too) and ``reals``, the
    path part of the three (:func:`reference_reals`)."""
    split = config["evaluate"]["reference_split"]
    xflip = bool(find_experiment(config, dataset, arch)["xflip"])
    return {
        "dataset": metric_dataset(config, dataset),
        "split": split,
        "xflip": xflip,
        "reals": reference_reals(split, xflip),
    }


def check_metric_data(config: dict, experiments: list[dict]) -> None:
    """``evaluate.metric_data`` maps registered datasets to registered datasets, each metric
    dataset prepared at the resolution of every run measured against it."""
    from adaptivemix.registries import DATASETS

    for name, metric in config["evaluate"]["metric_data"].items():
        DATASETS.get(name, "evaluate.metric_data")
        DATASETS.get(metric, f"evaluate.metric_data.{name}")
    for exp in experiments:
        for name in exp["datasets"]:
            metric = metric_dataset(config, name)
            resolution = dataset_resolution(config, metric)
            if resolution != exp["resolution"]:
                expected = (
                    f"a dataset prepared at {name}'s resolution {exp['resolution']} "
                    f"({exp['key']}); '{metric}' is prepared at {resolution}"
                )
                raise ConfigError(f"evaluate.metric_data.{name}", metric, expected)


def _settings_key(gan: dict) -> str:
    """Where an experiment's gan keys are set: ``gan``, or its ``settings``."""
    key = gan.get("key", "gan")
    return "gan" if key == "gan" else f"{key}.settings"


def meta_networks(gan: dict):
    """The experiment's (G, D) on the meta device: structure only, for the checks below."""
    from adaptivemix.models import ARCHS, build_models_on_meta

    key = gan.get("key", "gan")
    ARCHS.get(gan["arch"], "gan.arch" if key == "gan" else f"{key}.arch")
    options_key = f"{_settings_key(gan)}.arch_options"
    return build_models_on_meta(gan["arch"], gan["resolution"], gan, key=options_key)


def check_variants(gan: dict, G, D, perceptual: dict | None = None) -> None:
    """Every variant name parses, every option set parses, every method fits the networks,
    every perceptual distance a method names can measure the run (``perceptual``: the
    config's section of their local files)."""
    from adaptivemix.gan.methods import IncompatibleError
    from adaptivemix.gan.variants import build_variant, parse_variant, registered_parts
    from adaptivemix.metrics.perceptual import check_method_distances

    key = gan.get("key", "gan")
    for name, options in gan["method_options"].items():
        if name not in registered_parts():
            expected = f"a method or augmentation name: {registered_parts()}"
            raise ConfigError(f"{key}.method_options.{name}", options, expected)
    for i, name in enumerate(gan["methods"]):
        method, _ = build_variant(name, gan["method_options"], f"{key}.methods[{i}]")
        try:
            method.check_compatible(G, D)
        except IncompatibleError as err:
            expected = f"a method that can train arch '{gan['arch']}' ({err})"
            raise ConfigError(f"{key}.methods[{i}]", name, expected) from None
        options_key = f"{_settings_key(gan)}.method_options.{parse_variant(name).method}"
        check_method_distances(method, options_key, perceptual or {}, gan["resolution"])


def check_training_knobs(gan: dict, device: str, G) -> None:
    """Mixed precision needs CUDA; path-length regularisation needs a G with a w-space."""
    from adaptivemix.gan.methods import IncompatibleError
    from adaptivemix.gan.regularizers import check_regularizers
    from adaptivemix.gan.trainer import check_precision

    where = _settings_key(gan)
    check_precision(gan["amp"], device, f"{where}.amp")
    try:
        check_regularizers(G, gan)
    except IncompatibleError as err:
        raise ConfigError(f"{where}.pl_weight", gan["pl_weight"], f"0 ({err})") from None


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
    arch_options: dict = dataclasses.field(default_factory=dict)  # the family's own options
    d_steps: int = 1  # D steps per G step, each on fresh reals and z (WGAN-GP's n_critic)
    gp_lambda: float = 0.0  # WGAN-GP weight of (‖∇D(x̂)‖ − 1)² on real/fake interpolates
    r1_interval: int = 1  # lazy R1: every k-th D step, weighted by k (StyleGAN2: 16)
    pl_weight: float = 0.0  # path-length regularisation weight (StyleGAN2: 2); needs w-space
    pl_interval: int = 4  # lazy path-length regularisation: every k-th G step, weighted by k
    xflip: bool = False  # flip each real image horizontally with probability 1/2
    amp: bool = False  # mixed precision for G and D forward passes (CUDA)
    channels_last: bool = False  # channels_last memory format for G and D
    probe_samples: int = 512  # reals, fakes and noise images of D's feature probe, each

    @classmethod
    def from_dict(cls, values: dict) -> GanRunConfig:
        check_known_keys(cls, values)
        return cls(**dict(values, betas=tuple(values["betas"])))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"betas": list(self.betas)}


def gan_run_config(config: dict, dataset: str, arch: str, method: str, seed: int) -> GanRunConfig:
    """The run's slice of a validated workflow config (its experiment's settings applied)."""
    gan = find_experiment(config, dataset, arch)
    # method_options holds every method's options: the run takes only its own, below
    shared = set(gan) & {f.name for f in dataclasses.fields(GanRunConfig)} - {"method_options"}
    own = {k: gan[k] for k in sorted(shared)}
    return GanRunConfig.from_dict(
        own
        | {
            "dataset": dataset,
            "method": method,
            "method_options": _own_options(gan["method_options"], method),
            "seed": int(seed),
            "device": config["device"],
        }
    )


def _own_options(all_options: dict, variant: str) -> dict:
    """The options of the variant's parts only, so other methods' options never rerun it;
    a sweep point's options (after ``@``) set over its method's."""
    from adaptivemix.gan.variants import parse_variant

    parsed = parse_variant(variant)
    own = {part: all_options[part] for part in parsed.parts if part in all_options}
    if parsed.point:
        own[parsed.method] = own.get(parsed.method, {}) | dict(parsed.point)
    return own


def gan_sweeps(config: dict) -> list[tuple[dict, dict, str]]:
    """(sweep, the experiment training its dataset, its config key) of each ``gan.sweeps``."""
    experiments = gan_experiments(config)
    found = []
    for i, sweep in enumerate(config["gan"].get("sweeps", [])):
        key = f"gan.sweeps[{i}]"
        hosts = [
            e for e in experiments
            if sweep["dataset"] in e["datasets"] and sweep.get("arch", e["arch"]) == e["arch"]
        ]  # fmt: skip
        if len(hosts) != 1:
            trained = sorted({(d, e["arch"]) for e in experiments for d in e["datasets"]})
            expected = f"a dataset one experiment trains (dataset, arch): {trained}"
            if len(hosts) > 1:
                expected += "; give the sweep's arch to choose"
            raise ConfigError(f"{key}.dataset", sweep["dataset"], expected)
        found.append((sweep, hosts[0], key))
    return found


def check_sweeps(config: dict) -> None:
    """Sweep names unique, each variant registered, each grid value a valid option."""
    from adaptivemix.gan.methods import build_method
    from adaptivemix.gan.variants import parse_variant
    from adaptivemix.sweeps import check_sweep

    names: set[str] = set()
    for sweep, experiment, key in gan_sweeps(config):
        if sweep["name"] in names:
            raise ConfigError(f"{key}.name", sweep["name"], "a name no other sweep has")
        names.add(sweep["name"])
        parse_variant(sweep["method"], f"{key}.method")
        check_sweep(sweep, key, experiment["method_options"], build_method)
