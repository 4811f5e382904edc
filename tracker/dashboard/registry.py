"""Registering the best run's model and promoting it with the `champion` alias, on evidence.

The rule is explicit (a metric and whether higher or lower is better) and conservative: the
alias moves only when the candidate beats the current champion on that metric *and* a paired
test on the same test examples says the difference is not a seed's noise (McNemar's exact
test at `alpha`, with a bootstrap interval of the accuracy difference, `paired`); `force`
promotes without that and says so on the version. Runs tested on different data are not
compared. The displaced version keeps the alias `previous`.

Every run and logged model is considered (the searches are paged), only FINISHED runs and
READY models, and the champion is read and moved under a lock in the registry's own store
(`registry_lock`), so that two promotions at once make one new version. Versions carry the run
id, the metric values, the data fingerprint and the paired test's statistics as tags, and
promoting the same run twice never creates a second version."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlflow.entities import LoggedModel, LoggedModelStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.dashboard.compare import client_for
from tracker.dashboard.model_names import CHAMPION, PREVIOUS, default_model_name
from tracker.dashboard.paired import DEFAULT_ALPHA, NotComparable, PairedResult, compare_runs
from tracker.dashboard.registry_lock import promotion_lock
from tracker.schema import DATA_FINGERPRINT_TAG, DEFAULT_RANK_METRIC
from tracker.store.experiments import require_experiment

__all__ = ["CHAMPION", "PREVIOUS", "Candidate", "Promotion", "default_model_name", "promote"]

Mode = Literal["max", "min"]


@dataclass(frozen=True)
class Candidate:
    run_id: str
    run_name: str
    model_id: str
    value: float
    metrics: dict[str, float]
    fingerprint: str | None


@dataclass(frozen=True)
class Promotion:
    model_name: str
    candidate: Candidate
    version: str | None  # the candidate's version (None on a dry run that would create one)
    promoted: bool
    message: str
    # The paired test against the champion (None: there was none, or it was not run).
    evidence: PairedResult | None = None


def best_candidate(
    client: MlflowClient, experiment: str, metric: str, mode: Mode, run_id: str | None = None
) -> Candidate:
    """The finished run with a logged model that is best on `metric` (or the run `run_id`,
    which must be one)."""
    if mode not in ("max", "min"):
        raise ValueError(f"--mode must be 'max' or 'min', got {mode!r}")
    experiment_id = require_experiment(client, experiment)
    runs = list(_pages(client.search_runs, experiment_ids=[experiment_id], max_results=1000))
    if not any(metric in r.data.metrics for r in runs):
        known = sorted({k for r in runs for k in r.data.metrics})
        raise ValueError(
            f"no run in experiment {experiment!r} has metric {metric!r}; "
            f"known metrics: {', '.join(known) or 'none'}"
        )
    models = _ready_models_by_run(client, experiment_id)
    eligible = [
        r
        for r in runs
        if r.info.status == "FINISHED"
        and r.info.run_id in models
        and metric in r.data.metrics
        and not math.isnan(r.data.metrics[metric])
    ]
    if not eligible:
        raise ValueError(
            f"no finished run with a logged model and metric {metric!r} "
            f"in experiment {experiment!r}"
        )
    sign = 1 if mode == "max" else -1
    if run_id is not None:
        chosen = [r for r in eligible if r.info.run_id == run_id]
        if not chosen:
            raise ValueError(
                f"run {run_id} is not a finished run with a logged model and metric {metric!r} "
                f"in experiment {experiment!r}"
            )
        eligible = chosen
    best = max(eligible, key=lambda r: (sign * r.data.metrics[metric], -r.info.start_time))
    return Candidate(
        run_id=best.info.run_id,
        run_name=best.info.run_name,
        model_id=models[best.info.run_id],
        value=best.data.metrics[metric],
        metrics={k: v for k, v in best.data.metrics.items() if k.startswith("test/")},
        fingerprint=best.data.tags.get(DATA_FINGERPRINT_TAG),
    )


def _pages(search, **kwargs):
    """Every item of a paged MLflow search, page after page."""
    token = None
    while True:
        page = search(**kwargs, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _ready_models_by_run(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    """The newest READY logged model of each run. A PENDING model is still being uploaded (or
    its upload died): it is never registered."""
    newest: dict[str, LoggedModel] = {}
    search = client.search_logged_models
    for model in _pages(search, experiment_ids=[experiment_id], max_results=100):
        if model.status != LoggedModelStatus.READY or not model.source_run_id:
            continue
        current = newest.get(model.source_run_id)
        if current is None or model.creation_timestamp > current.creation_timestamp:
            newest[model.source_run_id] = model
    return {run_id: model.model_id for run_id, model in newest.items()}


def _existing_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return min(versions, key=lambda v: int(v.version)) if versions else None


def _champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _register(
    client: MlflowClient,
    name: str,
    cand: Candidate,
    metric: str,
    mode: Mode,
    extra_tags: dict[str, str],
) -> str:
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="newsdesk headline classifier")
    logged = client.get_logged_model(cand.model_id)
    tags = {
        "run_id": cand.run_id,
        "run_name": cand.run_name,
        "promotion.metric": metric,
        "promotion.mode": mode,
        **{k: f"{v:.6g}" for k, v in cand.metrics.items()},
    }
    if cand.fingerprint:
        tags[DATA_FINGERPRINT_TAG] = cand.fingerprint
    tags.update(extra_tags)
    version = client.create_model_version(
        name, source=logged.artifact_location, run_id=cand.run_id, tags=tags, model_id=cand.model_id
    )
    return version.version


def promote(
    experiment: str,
    metric: str = DEFAULT_RANK_METRIC,
    mode: Mode = "max",
    model_name: str | None = None,
    dry_run: bool = False,
    tracking_uri: str | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    force: bool = False,
    run_id: str | None = None,
) -> Promotion:
    """Register the best run's model as `model_name` and move `champion` to it when it beats
    the current champion by `metric` in the direction `mode` ("max": higher is better).

    Args:
        experiment: the experiment whose FINISHED runs with a logged model compete.
        metric, mode: what ranks them; named explicitly, never guessed from the name.
        model_name: the registered model (default: `<experiment>-classifier`).
        dry_run: say what would change and change nothing.
        tracking_uri: the store (default: `MLFLOW_TRACKING_URI`, else the embedded store).
        alpha: the significance level the paired test against the champion must reach.
        force: promote a candidate that beats the champion on `metric` without significance
            (or that cannot be compared); the version is tagged `promotion.forced`.
        run_id: the challenger (default: the best run by `metric`).

    Returns:
        A `Promotion`: the version, whether `champion` moved, the paired test's result, and
        a one-line `message` (the difference, its interval and the p-value when it stays).
        The statistics are tags of the promoted version (`promotion.p_value`, ...).
        The displaced champion becomes `previous`; promoting the same run twice adds no
        version. Concurrent promotions are serialised by a lock in the registry.

    Raises:
        ValueError: an unknown experiment, or no run with the metric and a logged model;
            `paired.NotComparable` (a ValueError) when the challenger and the champion were
            tested on different data or one has no test predictions, unless `force`.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha must be between 0 and 1, got {alpha}")
    rule = _Rule(metric, mode, alpha, force)
    client = client_for(tracking_uri)
    name = model_name or default_model_name(experiment)
    cand = best_candidate(client, experiment, metric, mode, run_id)
    if dry_run:
        return _decide(client, name, cand, rule, dry_run=True)
    with promotion_lock(client, name):
        # Read the champion again under the lock: another promotion may just have moved it.
        return _decide(client, name, cand, rule, dry_run=False)


@dataclass(frozen=True)
class _Rule:
    metric: str
    mode: Mode
    alpha: float
    force: bool


def _evidence(
    client: MlflowClient, cand: Candidate, champion: ModelVersion, rule: _Rule
) -> tuple[PairedResult | None, str | None]:
    """The paired test of the candidate against the champion, and why it cannot be run
    (None when it could). Without `force`, a comparison that cannot be made is an error."""
    try:
        return compare_runs(client, cand.run_id, champion.run_id), None
    except NotComparable as exc:
        if not rule.force:
            raise NotComparable(
                f"cannot compare the challenger with {champion.name}@{CHAMPION} version "
                f"{champion.version}: {exc}; --force promotes without the comparison"
            ) from None
        return None, str(exc)


def _decide(
    client: MlflowClient, name: str, cand: Candidate, rule: _Rule, *, dry_run: bool
) -> Promotion:
    """Compare `cand` with the current champion and move the aliases when it wins."""
    metric, mode = rule.metric, rule.mode
    existing = _existing_version(client, name, cand.run_id)
    champion = _champion(client, name)
    label = f"run {cand.run_name} ({cand.run_id[:8]}, {metric} {cand.value:.4f})"

    if champion is not None and existing is not None and champion.version == existing.version:
        return Promotion(
            name,
            cand,
            existing.version,
            False,
            f"{label} is already {name}@{CHAMPION} (version {existing.version}); nothing to do",
        )
    if champion is not None:
        champ_value = _version_metric(client, champion, metric)
        sign = 1 if mode == "max" else -1
        if champ_value is not None and not sign * cand.value > sign * champ_value:
            try:  # the paired test, for the record: how far apart the two are
                evidence = compare_runs(client, cand.run_id, champion.run_id)
                detail = f"; {evidence.describe()}"
            except NotComparable:
                evidence, detail = None, ""
            return Promotion(
                name,
                cand,
                existing.version if existing else None,
                False,
                f"kept {name}@{CHAMPION} version {champion.version} ({metric} "
                f"{champ_value:.4f}): best candidate {label} does not beat it{detail}",
                evidence,
            )
    evidence, not_compared = None, None
    tags = {"promotion.alpha": f"{rule.alpha:g}"}
    if champion is None:
        tags["promotion.evidence"] = "first champion"
    else:
        evidence, not_compared = _evidence(client, cand, champion, rule)
        tags["promotion.against_version"] = str(champion.version)
        if evidence is not None:
            tags.update(evidence.tags("promotion"))
        better = evidence is not None and evidence.difference > 0
        if not (better and evidence.significant(rule.alpha)) and not rule.force:
            return Promotion(
                name,
                cand,
                existing.version if existing else None,
                False,
                f"kept {name}@{CHAMPION} version {champion.version}: {label} is not "
                f"significantly better at alpha {rule.alpha:g}: {evidence.describe()} "
                "(--force promotes anyway)",
                evidence,
            )
        if rule.force:
            tags["promotion.forced"] = "true"
            if not_compared:
                tags["promotion.not_compared"] = not_compared[:5000]
    if dry_run:
        what = f"version {existing.version}" if existing else "a new version"
        return Promotion(
            name,
            cand,
            existing.version if existing else None,
            False,
            f"dry run: would register {what} of {name} from {label} and make it @{CHAMPION}",
            evidence,
        )
    _require_loadable(client, cand, name, champion)
    if existing:
        version = existing.version
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    else:
        version = _register(client, name, cand, metric, mode, tags)
    client.set_registered_model_alias(name, CHAMPION, version)
    message = f"{name}@{CHAMPION} -> version {version}, {label}"
    if evidence is not None:
        message += f"; {evidence.describe()}"
    if rule.force:
        message += " (forced)"
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion.version)
        message += f"; version {champion.version} is now @{PREVIOUS}"
    else:
        message += "; first champion"
    return Promotion(name, cand, version, True, message, evidence)


class ModelDoesNotLoad(ValueError):
    """The challenger's model fails to load: crowning it would break every prediction."""


def _require_loadable(
    client: MlflowClient, cand: Candidate, name: str, champion: ModelVersion | None
) -> None:
    """Load the challenger's model here, as `newsdesk predict` and a served endpoint would,
    before any alias moves; a model that does not load stops the promotion."""
    from tracker.dashboard.predict import load_model

    try:
        load_model(f"models:/{cand.model_id}", client.tracking_uri, check_requirements=False)
    except Exception as exc:  # noqa: BLE001 - whatever the model's loader raises
        kept = (
            f"{name}@{CHAMPION} stays version {champion.version}"
            if champion
            else (f"{name} has no {CHAMPION}")
        )
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")
        raise ModelDoesNotLoad(
            f"the model of run {cand.run_name} ({cand.run_id[:8]}) does not load ({reason}), "
            f"so it is not promoted; {kept}"
        ) from None


def _version_metric(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    if version.run_id:
        value = client.get_run(version.run_id).data.metrics.get(metric)
        if value is not None:
            return value
    tagged = version.tags.get(metric)
    return float(tagged) if tagged is not None else None


def champion_summary(model_name: str, tracking_uri: str | None = None) -> dict[str, str] | None:
    """The champion version of `model_name` with its tags, or None when there is none."""
    client = client_for(tracking_uri)
    version = _champion(client, model_name)
    if version is None:
        return None
    return {
        "model_name": model_name,
        "version": version.version,
        "run_id": version.run_id,
        **version.tags,
    }
