"""The `handoff` command: the app, and the commands of each part mounted on it.

The order of the `register` calls is the order `handoff --help` lists the commands in, then the
groups (and `workers` exists before handoff.cli.identity adds its password commands to it).
"""

from __future__ import annotations

import typer

from handoff.cli.identity import register as register_identity
from handoff.cli.intake import register as register_intake
from handoff.cli.quotes import register as register_quotes
from handoff.cli.report import register as register_report
from handoff.cli.routing import register as register_routing
from handoff.cli.simulation import register as register_simulation
from handoff.cli.stack import register as register_stack
from handoff.cli.steps import register as register_steps

app = typer.Typer(help="handoff — the back office after the sale, as Prefect workflows.", no_args_is_help=True)
register_intake(app)
register_routing(app)
register_report(app)
register_simulation(app)
register_identity(app)
register_quotes(app)
register_steps(app)
register_stack(app)


if __name__ == "__main__":
    app()
