"""The ``lamed`` command line: a click group whose commands stay thin and call the modules.

Each command imports what it uses when it runs, so ``lamed --help`` and ``lamed serve``
do not pay for boto3, requests or jinja2 (benchmarks/cli_start.py measures it).
"""

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from lamed import __version__, report  # report's imports are cheap; requests comes when it reads

# lamed's known failures, (module, exception class): each becomes one line. A module's class is
# looked up only once the module is imported (before that, nothing can have raised it).
ONE_LINE_FAILURES = (
    ("lamed.config", "ConfigError"),
    ("lamed.serve", "ServeError"),
    ("lamed.aws.session", "AwsSetupError"),
    ("lamed.aws.package", "PackageError"),
    ("lamed.report", "ReportError"),
    ("lamed.migrate", "MigrateError"),
    ("lamed.aws.plan", "OwnershipError"),
    ("lamed.aws.role", "RoleTooLarge"),
    ("lamed.aws.client", "AwsWaitError"),
    ("lamed.aws.client", "MissingPermission"),
    ("lamed.planner", "Unplannable"),
)
AWS_FAILURES = (("botocore.exceptions", "BotoCoreError"), ("botocore.exceptions", "ClientError"))


def _imported(failures) -> tuple[type, ...]:
    """The exception classes of ``failures`` whose module is already imported."""
    return tuple(getattr(sys.modules[module], name) for module, name in failures if module in sys.modules)


class LamedGroup(click.Group):
    """Turns lamed's known failures into one clear line and a non-zero exit.

    ``--debug`` lets the original exception through, traceback and all.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if ctx.meta.get("lamed.debug"):
                raise
            if isinstance(exc, _imported(ONE_LINE_FAILURES)):
                raise click.ClickException(str(exc)) from exc
            if isinstance(exc, _imported(AWS_FAILURES)):
                from lamed.aws.session import aws_error_message

                raise click.ClickException(aws_error_message(exc)) from exc
            raise


@click.group(cls=LamedGroup)
@click.version_option(__version__, prog_name="lamed")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile to use (default: the standard credential chain).")
@click.option("--region", envvar="AWS_REGION", help="AWS region (default: the profile's or AWS_DEFAULT_REGION).")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx, profile, region, debug):
    """lamed: your own A/B-testing backend for AlephBet."""
    ctx.meta["lamed.debug"] = debug
    ctx.obj = {"profile": profile, "region": region, "debug": debug}


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--api-key",
    envvar="LAMED_API_KEY",
    help="Key for /experiments, /experiment and /delete [env LAMED_API_KEY; default: one generated and kept in "
    "~/.lamed/serve-api-key].",
)
def serve(host, port, api_key):
    """Run the lamed API locally, on an embedded Redis (the config's with "serve": {"use_config_redis": true})."""
    import logging

    from lamed.serve import run as run_local_api

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_local_api(host, port, api_key, echo=click.echo)


# -- AWS: deploy, status, rollback, destroy ------------------------------------------


def _aws_session(obj):
    from lamed.aws.session import make_session

    return make_session(obj["profile"], obj["region"])


def _connect(session):
    """lamed's AWS clients (its retries, waits and partition) for ``session``, with progress on stdout."""
    from lamed.aws.client import Aws

    return Aws.connect(session, echo=click.echo)


def _names(stage: str | None, region: str):
    """Every AWS name of ``stage`` in ``region``."""
    from lamed.aws.resources import Names

    return Names(stage, region)


def _function_names(names) -> list[str]:
    """The functions of the config's wiring, as the stage of ``names`` names them; the standard four when
    there is no config."""
    from lamed.aws.resources import STANDARD_FUNCTION_NAMES, wiring
    from lamed.config import ConfigNotFound, load_config

    try:
        config = load_config()
    except ConfigNotFound:
        return [names.staged(name) for name in STANDARD_FUNCTION_NAMES]
    return [function.name for function in wiring(config, names)[0]]


def _checked_stage(ctx, param, stage: str | None) -> str | None:
    if stage is None:
        return None
    from lamed.aws.resources import StageError, check_stage

    try:
        return check_stage(stage)
    except StageError as exc:
        raise click.ClickException(str(exc)) from None


def _stage_option(command):
    """``--stage NAME``: one of several deployments side by side (no stage: the names lamed always used)."""
    return click.option(
        "--stage",
        metavar="NAME",
        callback=_checked_stage,
        help="The deployment to act on, e.g. dev: its resources' names end in -NAME [default: none, the plain names].",
    )(command)


def _in(region: str, stage: str | None) -> str:
    """``eu-west-1``, or ``eu-west-1 for stage dev``: where a command acts, in its lines."""
    return f"{region} for stage {stage}" if stage else region


def _without_function_urls(region: str) -> str | None:
    """The line that says /track goes through the REST API because ``region`` has no function URLs, or None."""
    from lamed.aws.resources import function_urls_exist

    if function_urls_exist(region):
        return None
    return f"note: {region} has no Lambda function URLs (AWS's list): /track is served by the REST API there"


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print the plan, step by step, and change nothing.")
@click.option("--no-preflight", is_flag=True, help="Skip the AWS and Redis checks that run first.")
@click.option("--force", is_flag=True, help="Deploy even with a Redis on this machine (loopback, socket), which no Lambda reaches.")
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over existing resources with lamed's names that lamed did not create (tag them, change them).",
)
@_stage_option
@click.pass_context
def deploy(ctx, dry_run, no_preflight, force, adopt, stage):
    """Package lamed and make AWS match: role, functions, REST API, API key (only what changed)."""
    from lamed.aws.apply import execute, show
    from lamed.aws.deployment import find_deployment
    from lamed.aws.package import build_package
    from lamed.aws.plan import plan_deploy
    from lamed.aws.resources import desired_state
    from lamed.config import load_config
    from lamed.preflight import unreachable_redis
    from lamed.snippet import render_snippet

    config = load_config()
    if no_preflight:
        for warning in config.warnings:
            click.echo(f"warning: {warning}", err=True)
    else:  # its lines carry the config's warnings; exits 1 when a check fails; a plan needs no Redis
        ctx.invoke(preflight, redis_check=not dry_run)
    problem = unreachable_redis(config)
    if problem and not (dry_run or force):
        raise click.ClickException(f"{problem}, or pass --force to deploy anyway")
    if problem and dry_run:
        click.echo(f"warning: {problem}; a real deploy refuses it without --force", err=True)
    session = _aws_session(ctx.obj)
    aws = _connect(session)
    names = _names(stage, aws.place.region)
    code = build_package(config.runtime)
    steps = plan_deploy(aws, desired_state(config, code, names), adopt=adopt)
    click.echo(f"package: {len(code)} bytes, bytecode for {config.runtime}")  # after the plan, which may fail in one line
    note = config.track_function_url and _without_function_urls(names.region)
    if note:
        click.echo(note)
    changes = sum(step.changes for step in steps)
    if dry_run:
        show(steps, click.echo)
        click.echo(f"dry run: {changes} change(s) planned, nothing changed")
        return
    execute(steps, aws, click.echo)
    if not changes:
        click.echo("no changes")
    found = find_deployment(session, names, clients=aws, with_function_url=True)  # lamed's paced clients: AWS may still throttle
    click.echo("")
    _track_lines(found.function_url, found.rest_track_url)
    status_command = f"lamed status --stage {stage} --show-key" if stage else "lamed status --show-key"
    click.echo(f"experiments URL: {found.experiments_url}  (API key: `{status_command}`)")
    click.echo("\nPaste into your page:\n")
    click.echo(render_snippet(found.track_url, config.namespace))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--show-key", is_flag=True, help="Include the API key's value (a secret).")
@_stage_option
@click.pass_obj
def status(obj, as_json, show_key, stage):
    """What is deployed: API id and URLs, stage, each function's live and kept versions."""
    from lamed.aws.deployment import deployment_status

    session = _aws_session(obj)
    names = _names(stage, session.region_name)
    found = deployment_status(session, names, _function_names(names))
    if found["api"] and not show_key:
        del found["api"]["api_key"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    api, where = found["api"], _in(found["region"], stage)
    if api is None:
        click.echo(f"no lamed API in {where} (run `lamed deploy{f' --stage {stage}' if stage else ''}`)")
    else:
        deployed = "deployed" if api["stage_deployed"] else "not deployed"
        click.echo(f"API {api['id']} in {where}, API Gateway stage {api['stage']}: {deployed}")
        note = _without_function_urls(found["region"])
        if note:
            click.echo(note)
        _track_lines(found["function_url"], api["track_url"], api["track_throttle"])
        click.echo(f"experiments URL: {api['experiments_url']}")
        if show_key:
            click.echo(f"API key:         {api['api_key']}")
    if found["redis"]:
        click.echo(f"Redis: {_redis_line(found['redis'])}")
    for function in found["functions"]:
        if function["deployed"]:
            kept = ", ".join(f"v{number}" for number in function["versions"])
            vpc = function["vpc"]
            where = f", VPC subnets {', '.join(vpc['subnet_ids'])}" if vpc else ""
            logs = _logs_note(function["log_group"])
            reserved = function["reserved_concurrency"]
            limit = f", reserved concurrency {reserved}" if reserved is not None else ""
            click.echo(
                f"{function['name']}: live v{function['live_version']}, {function['runtime']}, kept {kept}{where}{limit}{logs}"
            )
        else:
            click.echo(f"{function['name']}: not deployed")


def _track_lines(function_url: str | None, rest_track_url: str, throttle: dict | None = None) -> None:
    """The track URL pages should use (the function URL when there is one) and the REST /track beside it."""
    limit = f"  (throttled {throttle['rate']:g}/s, burst {throttle['burst']})" if throttle else ""
    if function_url:
        click.echo(f"track URL:       {function_url}  (Lambda function URL)")
        click.echo(f"REST track URL:  {rest_track_url}  (API Gateway, for pages that already use it){limit}")
    else:
        click.echo(f"track URL:       {rest_track_url}{limit}")


def _logs_note(group: dict | None) -> str:
    if group is None:
        return ", no log group"
    days = group["retention_days"]
    return f", logs kept {days} days" if days else ", logs kept forever"


def _redis_line(mode: dict) -> str:
    """``rediss://host:6379, cluster, TLS, IAM user u on cache c``: how the functions reach Redis."""
    auth = {"none": "no auth", "password": "password auth", "ACL user": "ACL user"}.get(mode["auth"], mode["auth"])
    return ", ".join([mode["address"]] + ["cluster"] * mode["cluster"] + ["TLS"] * mode["tls"] + [auth])


@cli.command()
@_stage_option
@click.pass_obj
def rollback(obj, stage):
    """Point each function's live alias at its previous version."""
    from lamed.aws.plan import plan_rollback
    from lamed.aws.apply import execute

    aws = _connect(_aws_session(obj))
    steps = plan_rollback(aws, _function_names(_names(stage, aws.place.region)))
    execute(steps, aws, click.echo)
    if not any(step.changes for step in steps):
        raise click.ClickException("nothing to roll back: no function has an earlier version than the live one")


@cli.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-logs", is_flag=True, help="Keep the functions' log groups (and their logs).")
@_stage_option
@click.pass_obj
def destroy(obj, yes, keep_logs, stage):
    """Delete what deploy created (tagged as lamed's): usage plan, API key, REST API, functions, log groups, role.

    The Redis data stays.
    """
    from lamed.aws.plan import plan_destroy
    from lamed.aws.apply import execute, show

    aws = _connect(_aws_session(obj))
    names = _names(stage, aws.place.region)
    steps = plan_destroy(aws, names, _function_names(names), keep_logs=keep_logs)
    region = _in(aws.place.region, stage)
    if not any(step.changes for step in steps):
        show(steps, click.echo)
        click.echo(f"nothing to destroy in {region}")
        return
    if not yes:
        show(steps, click.echo)
        click.confirm(f"Delete all of this in {region}?", abort=True)
    execute(steps, aws, click.echo)


# -- setup: configure, preflight, package ---------------------------------------------


@cli.command()
@click.option("--no-edit", is_flag=True, help="Only create the file; do not open an editor (the default without a terminal).")
def configure(no_edit):
    """Create the config file from the template if there is none, then open it in your editor."""
    from lamed.config import load_config
    from lamed.configure import config_target, create_config

    path = config_target()
    if create_config(path):
        click.echo(f"created {path} (readable by you only)")
    else:
        click.echo(f"using the existing config {path}")
    if not no_edit and not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo("not a terminal: no editor opened (as with --no-edit); edit the file, then run `lamed configure` again")
    elif not no_edit:
        click.edit(filename=str(path))
    config = load_config(path)
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    if config.warnings:
        count = len(config.warnings)
        click.echo(f"{path} loads, with {count} warning{'s' * (count > 1)} above to fix; then `lamed preflight`, then `lamed deploy`")
    else:
        click.echo(f"{path} is valid; next: `lamed preflight`, then `lamed deploy`")


@cli.command()
@click.pass_obj
def preflight(obj, redis_check=True):
    """Check the config, AWS credentials and region, and that Redis answers; exit 1 on any failure."""
    from lamed.preflight import run_checks

    failed = False
    for check in run_checks(obj["profile"], obj["region"], redis_check):
        click.echo(check.line)
        failed = failed or not check.ok
    if failed:
        raise SystemExit(1)


@cli.command()
@click.option(
    "-o", "--output", default="lamed.zip", show_default=True, type=click.Path(dir_okay=False), help="Where to write the zip."
)
def package(output):
    """Build the Lambda zip (lamed's runtime and redis-py, compiled for the config's runtime; no config) without deploying it."""
    from lamed.aws.package import write_package
    from lamed.config import DEFAULT_RUNTIME, find_config_path, load_config

    path = find_config_path()
    runtime = load_config(path).runtime if path else DEFAULT_RUNTIME
    size = write_package(output, runtime)
    click.echo(f"wrote {output} ({size} bytes, bytecode for {runtime})")


def _results_source(command):
    """The options of the commands that read results: where from, which namespace, how long to wait."""
    options = [
        click.option(
            "--endpoint",
            envvar="LAMED_ENDPOINT",
            metavar="URL",
            help="Experiments URL of a lamed, original Lamed or `lamed serve` API, e.g. "
            "http://127.0.0.1:8000/prod/experiments; an API's base URL (http://127.0.0.1:8000) or stage URL (…/prod) "
            "reads its /prod/experiments or /experiments [env LAMED_ENDPOINT; default: the deployed API, found through AWS].",
        ),
        click.option("--api-key", envvar="LAMED_API_KEY", metavar="KEY", help="The API key of --endpoint [env LAMED_API_KEY]."),
        click.option("--namespace", metavar="NS", help="Namespace to read [default: the config's, else alephbet]."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            default=report.DEFAULT_TIMEOUT_SECONDS,
            show_default=True,
            help="Seconds to wait for the API's answer.",
        ),
        _stage_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _read_results(ctx, endpoint, api_key, namespace, timeout, stage, **choices) -> report.Results:
    """Results from --endpoint, else (without --stage) from the running `lamed serve`, else from the
    stage's deployment found through AWS (key included)."""
    if endpoint is None:
        if api_key and ctx.get_parameter_source("api_key") is ParameterSource.COMMANDLINE:
            raise click.UsageError("--api-key goes with --endpoint URL; without both, the deployed API is found through AWS")
        endpoint, api_key = _discover_endpoint(ctx.obj, stage)
    elif stage is not None:
        raise click.UsageError("--stage finds a deployed API through AWS; --endpoint names one: pass only one of them")
    elif urlsplit(endpoint).path.rstrip("/").endswith("/track"):
        experiments = endpoint.rstrip("/").removesuffix("track") + "experiments"
        raise click.BadParameter(
            f"{endpoint} is the track URL, where AlephBet sends events; results are read from {experiments}",
            param_hint="--endpoint",
        )
    else:
        given, endpoint = endpoint, report.experiments_url(endpoint)
        if endpoint != given:
            click.echo(f"reading {endpoint} (the experiments URL of {given})", err=True)
    return report.load_results(endpoint, api_key, namespace or report.default_namespace(), timeout=timeout, **choices)


def _discover_endpoint(obj, stage: str | None) -> tuple[str, str]:
    """The running `lamed serve`'s experiments URL and key (unless a stage is asked for), else the deployed
    stage's; else one line saying how to pass --endpoint."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lamed.aws.session import AwsSetupError, aws_error_message
    from lamed.serve_state import running_serve

    local = None if stage else running_serve()
    if local:
        click.echo(f"reading the running `lamed serve`: {local[0]} (--endpoint URL for another API)", err=True)
        return local
    try:
        return report.discover_endpoint(obj["profile"], obj["region"], stage)
    except (AwsSetupError, BotoCoreError, ClientError) as exc:
        reason = str(exc) if isinstance(exc, AwsSetupError) else aws_error_message(exc)
        raise click.ClickException(
            "no running `lamed serve` to read — fix: start one (`lamed serve`, in another terminal), or pass "
            "--endpoint URL --api-key KEY (the experiments URL and key that `lamed serve` prints)\n"
            f"and no deployed API found through AWS: {reason}"
        ) from exc


@cli.command()
@_results_source
@click.option("--experiment", metavar="NAME", help="Show only this experiment.")
@click.option("--control", metavar="NAME", help="The variant to compare with [default: the declared control, else 'control', else the first by name].")
@click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="table", show_default=True)
@click.option("--days", is_flag=True, help="With --format csv: the daily series, each variant's cumulative figures per UTC day.")
@click.option("--mde", metavar="UPLIFT", help="Size undecided comparisons for this relative effect, e.g. 5% [default: the observed one].")
@click.pass_context
def results(ctx, endpoint, api_key, namespace, timeout, stage, experiment, control, fmt, days, mde):
    """Print each experiment's figures: decisions, rates, intervals, uplift, p-values, what is still needed."""
    from lamed.planner import effect

    if days and fmt != "csv":
        raise click.UsageError("--days exports the daily series as CSV: add --format csv")
    size_for = None if mde is None else effect(mde)
    found = _read_results(ctx, endpoint, api_key, namespace, timeout, stage, experiment=experiment, control=control, mde=size_for)
    click.echo(report.render_days_csv(found) if days else report.render(found, fmt))


@cli.command()
@click.option("--baseline", required=True, metavar="RATE", help="The control's conversion rate, e.g. 10%.")
@click.option("--mde", required=True, metavar="UPLIFT", help="The smallest relative effect worth finding, e.g. 10% (10% -> 11%).")
@click.option("--variants", default=2, show_default=True, type=click.IntRange(2, 1000), help="Variants, the control included.")
@click.option("--daily", type=click.IntRange(1), metavar="N", help="Participants a day over all variants: also print the days.")
def plan(baseline, mde, variants, daily):
    """Print the participants per variant (and days) for an 80% chance that lamed's always-valid test decides."""
    from lamed import planner

    click.echo(planner.plan_text(planner.percentage(baseline, "--baseline"), planner.effect(mde), variants, daily))


@cli.command()
@_results_source
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The HTML file to write [default: ./lamed-dashboard.html].",
)
@click.option("--no-open", is_flag=True, help="Only write the file; do not open it in a browser.")
@click.pass_context
def dashboard(ctx, endpoint, api_key, namespace, timeout, stage, output, no_open):
    """Write a self-contained HTML dashboard of the results (no API key in it) and open it."""
    import webbrowser

    from lamed.dashboard import DEFAULT_OUTPUT, render_page as render_dashboard

    found = _read_results(ctx, endpoint, api_key, namespace, timeout, stage)
    path = (output or Path(DEFAULT_OUTPUT)).resolve()
    try:
        path.write_text(render_dashboard(found), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    count = len(found.analysis["experiments"])
    click.echo(f"wrote the dashboard of {count} experiment{'' if count == 1 else 's'} in namespace {found.namespace!r} to {path}")
    if not no_open and not webbrowser.open(path.as_uri()):
        click.echo("no browser found: open that file in one")


# -- migrate ---------------------------------------------------------------------------


@cli.command()
@click.option(
    "--from", "source_url", required=True, metavar="URL",
    help="The Redis with Lamed's layout to copy from, e.g. redis://:PASSWORD@old-host:6379/0 (rediss:// for TLS).",
)  # fmt: skip
@click.option("--namespace", metavar="NS", help="The namespace to copy [default: the config's, else alephbet].")
@click.option("--force", is_flag=True, help="Also when the namespace already has counts of its own: add to them.")
@click.option(
    "--skip-invalid", is_flag=True,
    help="Leave out the source's counters that are not fit to copy (bad counts, wrong key types, names /track "
    "refuses, beyond the config's bounds) instead of stopping; the summary counts them.",
)  # fmt: skip
def migrate(source_url, namespace, force, skip_invalid):
    """Copy a Lamed-layout namespace into the configured Redis (cluster or not); safe to run again."""
    import redis

    from lamed.config import URL_SCHEMES, load_config
    from lamed.connection import address, check_mode, explain, open_store
    from lamed.migrate import migrate as run_migration
    from lamed.names import printable

    config = load_config()
    namespace = namespace or config.namespace
    if not source_url.lower().startswith(URL_SCHEMES):
        raise click.BadParameter(f"must start with {', '.join(URL_SCHEMES)}", param_hint="--from")
    layout = "lamed's cluster layout" if config.cluster else "Lamed's layout"
    try:
        target = open_store(config.redis, config.uuid_expiry_seconds, config.bounds)
        target.client.ping()
        check_mode(target.client, config.redis)
        click.echo(f"migrating namespace {namespace!r} from {address({'url': source_url})} to {address(config.redis)} ({layout})")
        done = run_migration(source_url, target, namespace, force, skip_invalid=skip_invalid)
    except redis.RedisError as exc:
        raise click.ClickException(f"{explain(exc, config.redis, str(config.path))} (run it again to resume)") from exc
    for name, (source_total, target_total) in done.totals.items():
        click.echo(f"  {printable(name)}: {source_total} counted in the source, {target_total} in the target")
    skipped = f", {done.skipped} skipped (--skip-invalid)" if done.skipped else ""
    click.echo(
        f"{done.counters} counters of {len(done.totals)} experiments, {done.changed} changed{skipped}; "
        "every migrated count verified against the source"
    )
