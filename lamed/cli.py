"""The ``lamed`` command line: a click group whose commands stay thin and call the modules."""

import logging

import click
from botocore.exceptions import BotoCoreError, ClientError

from lamed import __version__
from lamed.aws.package import PackageError, write_package
from lamed.aws.session import AwsSetupError, aws_error_message
from lamed.config import ConfigError, load_config
from lamed.configure import config_target, create_config
from lamed.preflight import run_checks
from lamed.serve import ServeError, run as run_local_api


class LamedGroup(click.Group):
    """Turns lamed's known failures into one clear line and a non-zero exit.

    ``--debug`` lets the original exception through, traceback and all.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, ServeError, AwsSetupError, PackageError) as exc:
            if ctx.meta.get("lamed.debug"):
                raise
            raise click.ClickException(str(exc)) from exc
        except (BotoCoreError, ClientError) as exc:
            if ctx.meta.get("lamed.debug"):
                raise
            raise click.ClickException(aws_error_message(exc)) from exc


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
    """Run the lamed API locally, on an embedded Redis unless the config names one."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_local_api(host, port, api_key, echo=click.echo)


# -- setup: configure, preflight, package ---------------------------------------------


@cli.command()
@click.option("--no-edit", is_flag=True, help="Only create the file; do not open an editor.")
def configure(no_edit):
    """Create the config file from the template if there is none, then open it in your editor."""
    path = config_target()
    if create_config(path):
        click.echo(f"created {path} (readable by you only)")
    else:
        click.echo(f"using the existing config {path}")
    if not no_edit:
        click.edit(filename=str(path))
    config = load_config(path)
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{path} is valid; next: `lamed preflight`, then `lamed deploy`")


@cli.command()
@click.pass_obj
def preflight(obj):
    """Check the config, AWS credentials and region, and that Redis answers; exit 1 on any failure."""
    failed = False
    for check in run_checks(obj["profile"], obj["region"]):
        click.echo(check.line)
        failed = failed or not check.ok
    if failed:
        raise SystemExit(1)


@cli.command()
@click.option(
    "-o", "--output", default="lamed.zip", show_default=True, type=click.Path(dir_okay=False), help="Where to write the zip."
)
def package(output):
    """Build the Lambda zip (lamed's runtime, redis-py and config.json) without deploying it."""
    size = write_package(load_config(), output)
    click.echo(f"wrote {output} ({size} bytes)")
