"""Package an exported model for serving, as Paddle Serving's `paddle_serving_client.convert` does.

    python deploy/export_to_serving.py --dirname output/pairwise --model_filename inference.json \
        --params_filename inference.pdiparams --server_path serving_server --client_path serving_client \
        --fetch_alias_names predict --feed_alias_names input_ids,token_type_ids

serving_server/ gets the graph, parameters, tokenizer files and serving_server_conf.prototxt (our
server loads it as `model_dir`); serving_client/ gets serving_client_conf.prototxt, which
Paddle Serving's HttpClient.load_client_config reads.
"""

import argparse
import os
import shutil

from core.cli import run_cli
from core.errors import ModelLoadError
from core.exporting import INPUT_NAMES
from deploy.serving_conf import CLIENT_CONF, SERVER_CONF, render

SKIP = (".pdparams", ".pdopt")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dirname", required=True, help="directory of the exported model")
    p.add_argument("--model_filename", default=None, help="graph file (default: inference.json or .pdmodel)")
    p.add_argument("--params_filename", default="inference.pdiparams")
    p.add_argument("--server_path", default="serving_server")
    p.add_argument("--client_path", default="serving_client")
    p.add_argument("--fetch_alias_names", default="predict", help="alias of the output (one)")
    p.add_argument("--feed_alias_names", default=",".join(INPUT_NAMES), help="aliases of input_ids,token_type_ids")
    args = p.parse_args(argv)
    src = args.dirname
    model_file = args.model_filename or next(
        (f for f in ("inference.json", "inference.pdmodel") if os.path.isfile(os.path.join(src, f))), None
    )
    for f in (model_file, args.params_filename):
        if not f or not os.path.isfile(os.path.join(src, f)):
            raise ModelLoadError(f"{src}: no {f or 'inference.json/.pdmodel'} there; run export_model.py first")
    feed_alias = [a.strip() for a in args.feed_alias_names.split(",") if a.strip()]
    if len(feed_alias) != len(INPUT_NAMES):
        raise ModelLoadError(
            f"--feed_alias_names needs {len(INPUT_NAMES)} names ({', '.join(INPUT_NAMES)}), got {feed_alias}"
        )
    os.makedirs(args.server_path, exist_ok=True)
    os.makedirs(args.client_path, exist_ok=True)
    for f in os.listdir(src):
        path = os.path.join(src, f)
        if os.path.isfile(path) and not f.endswith(SKIP):
            target = {
                model_file: "inference" + os.path.splitext(model_file)[1],
                args.params_filename: "inference.pdiparams",
            }.get(f, f)
            shutil.copyfile(path, os.path.join(args.server_path, target))
    feeds = [{"name": n, "alias_name": a, "type": 0, "shape": [-1]} for n, a in zip(INPUT_NAMES, feed_alias)]
    fetches = [
        {"name": "probability", "alias_name": args.fetch_alias_names.split(",")[0].strip(), "type": 1, "shape": [1]}
    ]
    text = render(feeds, fetches)
    for d, name in ((args.server_path, SERVER_CONF), (args.client_path, CLIENT_CONF)):
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"wrote {args.server_path}/ ({SERVER_CONF}) and {args.client_path}/ ({CLIENT_CONF})")


if __name__ == "__main__":
    run_cli(main)
