"""One range-test step a backend: `common` (snapshot, rate table, batch loss) below
`tf_step`, `jax_step` and `torch_step`, and `dispatch`, the one place that picks among
them (importing only the current backend's).
"""
