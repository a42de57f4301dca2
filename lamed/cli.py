"""The ``lamed`` command line: a click group whose commands stay thin and call the modules."""

import logging

import click
from botocore.exceptions import BotoCoreError, ClientError

from lamed import __version__
from lamed.aws.package import PackageError
from lamed.aws.session import AwsSetupError, aws_error_message
from lamed.config import ConfigError
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
