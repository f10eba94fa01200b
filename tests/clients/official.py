"""Run Paddle Serving 0.9's own clients against our server (used by tests/test_server.py).

Under the Python 3.9 of ../shared/tools/paddle-serving-py39 (what the tests use when it is built),
the installed, unmodified packages are imported as users import them. Elsewhere (a fallback), the
clients come from PyPI (`pip download`): PipelineClient from paddle-serving-server==0.9.0 and
HttpClient from the cp39 paddle-serving-client==0.9.0 wheel. Only their pure-Python files are
unpacked, with minimal stubs for the imports that need their compiled parts or Python 2-era
names; their old generated protobuf code needs PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.

    python tests/clients/official.py CACHE_DIR rpc HOST:PORT '[{"query": ..., "title": ...}]'
    python tests/clients/official.py CACHE_DIR http_json|http_proto HOST:PORT CLIENT_CONF_DIR IDS_JSON TYPES_JSON
Prints one JSON line with the answer.
"""

import collections
import collections.abc
import glob
import json
import os
import subprocess
import sys
import zipfile

WHEELS = {
    "server": (["paddle-serving-server==0.9.0"], "paddle_serving_server-0.9.0-*.whl"),
    "client": (
        ["--only-binary=:all:", "--python-version", "3.9", "paddle-serving-client==0.9.0"],
        "paddle_serving_client-0.9.0-*.whl",
    ),
}
FILES = {
    "server": [
        "paddle_serving_server/pipeline/pipeline_client.py",
        "paddle_serving_server/pipeline/proto/pipeline_service_pb2.py",
        "paddle_serving_server/pipeline/proto/pipeline_service_pb2_grpc.py",
    ],
    "client": [
        "paddle_serving_client/httpclient.py",
        "paddle_serving_client/proto/general_model_config_pb2.py",
        "paddle_serving_client/proto/general_model_service_pb2.py",
        "paddle_serving_client/proto/general_model_service_pb2_grpc.py",
    ],
}
STUBS = {
    "paddle_serving_server/__init__.py": "",
    "paddle_serving_server/pipeline/__init__.py": "",
    "paddle_serving_server/pipeline/proto/__init__.py": "",
    # pipeline_client imports only this name from the (multiprocessing-heavy) channel module
    "paddle_serving_server/pipeline/channel.py": "import enum\nclass ChannelDataErrcode(enum.Enum):\n    OK = 0\n",
    "paddle_serving_client/__init__.py": "",
    "paddle_serving_client/proto/__init__.py": "",
}


def prepare(cache_dir):
    site = os.path.join(cache_dir, "site")
    if os.path.isfile(os.path.join(site, "ready")):
        return site
    os.makedirs(site, exist_ok=True)
    for key, (args, pattern) in WHEELS.items():
        found = glob.glob(os.path.join(cache_dir, pattern))
        if not found:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", cache_dir, *args], check=True
            )
            found = glob.glob(os.path.join(cache_dir, pattern))
        with zipfile.ZipFile(found[0]) as z:
            for name in FILES[key]:
                target = os.path.join(site, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(z.read(name))
    for name, text in STUBS.items():
        with open(os.path.join(site, name), "w") as f:
            f.write(text)
    open(os.path.join(site, "ready"), "w").close()
    return site


def main():
    cache_dir, mode, endpoint = sys.argv[1:4]
    if sys.version_info >= (3, 10):  # not the official packages' Python: their pure-Python files, stubbed
        site = prepare(cache_dir)
        if mode == "prepare":
            return
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        collections.Iterable = collections.abc.Iterable  # httpclient.py: `from collections import Iterable`
        sys.path.insert(0, site)
    import numpy as np

    if mode == "rpc":
        from paddle_serving_server.pipeline.pipeline_client import PipelineClient

        client = PipelineClient()
        client.connect([endpoint])
        items = json.loads(sys.argv[4])
        feed = {str(i): str(item) for i, item in enumerate(items)}  # str(dict), as PaddleNLP's rpc_client.py
        ret = client.predict(feed_dict=feed)
        value = list(ret.value)
        out = {"err_no": ret.err_no, "err_msg": ret.err_msg, "key": list(ret.key), "value": value}
        if ret.err_no == 0:
            out["scores"] = np.array(eval(value[0])).reshape(-1).tolist()  # noqa: S307 - what the official example does
        print(json.dumps(out))
    else:
        from paddle_serving_client.httpclient import HttpClient

        conf_dir, ids, types = sys.argv[4], json.loads(sys.argv[5]), json.loads(sys.argv[6])
        client = HttpClient()
        client.load_client_config(conf_dir)
        client.set_http_proto(mode == "http_proto")
        if len(sys.argv) > 7 and sys.argv[7] == "gzip":
            client.set_request_compress(True)
            client.set_response_compress(True)
        client.connect([endpoint])
        feed = {"input_ids": np.array(ids, dtype="int64"), "token_type_ids": np.array(types, dtype="int64")}
        result = client.predict(feed=feed, fetch=client.fetch_names_, batch=True)
        if result is None:
            print(json.dumps({"error": "no result"}))
        elif isinstance(result, dict):
            print(json.dumps({"scores": result["outputs"][0]["tensor"][0]["float_data"]}))
        else:
            print(json.dumps({"scores": list(result.outputs[0].tensor[0].float_data)}))


if __name__ == "__main__":
    main()
