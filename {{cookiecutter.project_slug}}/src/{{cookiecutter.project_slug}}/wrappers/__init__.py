"""Your models: each module here holds one `PipelineWrapper`, and its module name is its model id.

Add a module to add a model; delete one to remove it. Modules whose name starts with `_` are skipped,
which is where helpers shared by several wrappers can live.
"""
