"""``egmt serve``: a local web demo of a checkpoint (one page, one JSON endpoint).

:mod:`egmt.serve.pipeline` turns two uploaded files and a line of entities into everything the
page shows (fused PNG, heat maps, a few metrics), with no web framework involved;
:mod:`egmt.serve.app` is the Starlette app around it (needs the ``serve`` extra). This stage
imports ``egmt.infer`` and ``egmt.metrics``; nothing imports it but the CLI.
"""
