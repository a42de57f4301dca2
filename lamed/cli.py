"""The ``lamed`` command line: a click group whose commands stay thin and call the modules."""

import click

from lamed import __version__
from lamed.config import ConfigError


class LamedGroup(click.Group):
    """Turns lamed's known failures into one clear line and a non-zero exit.

    ``--debug`` lets the original exception through, traceback and all.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            if ctx.meta.get("lamed.debug"):
                raise
            raise click.ClickException(str(exc)) from exc


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
