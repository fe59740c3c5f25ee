"""``stylegan networks``: the network names every ``--network`` accepts, packaged and published, with where
each one's file is (packaged, downloaded, or downloaded on first use)."""
from __future__ import annotations

import json

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON (with URLs, licences, sources).")
def networks(as_json):
    """List the network names: those packaged with stylegan, and the authors' published networks
    (StyleGAN3-T/R, StyleGAN2, StyleGAN2-ADA), downloaded into the cache folder on first use. Any
    http(s):// URL of a network file works as --network too."""
    from stylegan import pretrained
    from stylegan.pretrained.download import downloads_dir

    rows = [{"name": n, "status": pretrained.where(n), "description": "packaged with stylegan (model card: "
             f"{pretrained.model_card_path(n).name})"} for n in pretrained.names()]
    rows += [{"name": p.name, "status": pretrained.where(p.name), "description": p.describe(), "url": p.url,
              "resolution": p.resolution, "config": p.config, "licence": p.licence, "source": p.source}
             for p in pretrained.PUBLISHED.values()]
    if as_json:
        click.echo(json.dumps({"cache": str(downloads_dir()), "networks": rows}, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['status']:<23}  {r['description']}")
    click.echo(f"\ndownloads are cached in {downloads_dir()} (set STYLEGAN_CACHE to move it)")
