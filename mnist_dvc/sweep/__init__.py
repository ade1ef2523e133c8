"""`make sweep`: a grid of params run as DVC experiments, one per task, on a Dask cluster.

`grid` turns `-S section.key=v1,v2` options into the combinations and their experiment names; `task` is
what a worker runs for one of them (a clone at the submitting commit, `dvc exp run`, then the outputs and
the experiment pushed to the shared remotes); `supervise` keeps that work inside the worker's lifetime;
`command` is the command line: a local cluster on 127.0.0.1, or the address of one you already run.
"""
