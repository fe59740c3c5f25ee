"""``stylegan configs``: the named configurations, what each adds, parameter counts, paper rows."""
from __future__ import annotations

import json

import click


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M"


@click.command(context_settings={"max_content_width": 100})
@click.option("--resolution", "resolutions", type=int, multiple=True, default=(1024,), show_default=True,
              help="Resolution of the parameter counts; repeat for several (--resolution 1024 --resolution 256).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="Plain text, a Markdown table (as in the README), or JSON.")
def configs(resolutions, fmt):
    """List every named configuration (--cfg NAME) with what it adds, its parameter counts and the paper row
    it reproduces."""
    from stylegan.config import ConfigError
    from stylegan.lineage import lineage

    try:
        rows = lineage(tuple(resolutions))
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--resolution") from None
    if fmt == "json":
        click.echo(json.dumps([{"name": r.name, "aliases": list(r.aliases), "family": r.family, "adds": r.adds,
                                "paper": r.paper, "params": {str(res): p for res, p in r.params.items()}}
                               for r in rows], indent=2))
        return
    if fmt == "markdown":
        counts = " | ".join(f"G / D at {res}²" for res in resolutions)
        click.echo(f"| `--cfg` | adds | {counts} | reproduces |")
        click.echo("|---|---|" + "---|" * len(resolutions) + "---|")
        for r in rows:
            name = f"`{r.name}`" + "".join(f" (= `{a}`)" for a in r.aliases)
            cells = " | ".join(f"{p['G']:,} / {p['D']:,}" for p in r.params.values())
            click.echo(f"| {name} | {r.adds} | {cells} | {r.paper} |")
        return
    for r in rows:
        name = r.name + "".join(f" (= {a})" for a in r.aliases)
        counts = "  ".join(f"{res}²: G {_millions(p['G'])} ({p['G']:,}), D {_millions(p['D'])} ({p['D']:,})"
                           for res, p in r.params.items())
        click.echo(f"{name:<26}{r.paper}")
        click.echo(f"{'':<26}{r.adds}")
        click.echo(f"{'':<26}{counts}")
