"""Protocol modules: each parses its wire format and handles the request, down to the model services.

    pipeline.py  Paddle Serving Pipeline (HTTP /{service}/prediction, gRPC PipelineService.inference)
    general.py   C++ Serving General model (POST /GeneralModelService/inference, JSON or proto)
    v1.py        /v1/rerank and /v1/embeddings
    search.py    /search and the Pipeline service "search"
    wire.py      field readers shared by all of them

They raise the errors of core/errors.py; the transports (deploy/transports/) turn those into
replies. A new protocol is a module here plus its routes in a transport.
"""
