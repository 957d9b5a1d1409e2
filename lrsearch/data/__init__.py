"""The user's data, read the way `model.fit` reads it: `reader` (arrays, datasets,
`PyDataset`, `DataLoader`; one ordered pass for a range test), `fit_data` (the arguments
of `fit` for a trial, and the pre-flight probe batch), `batches` (the same batches on JAX
and PyTorch), `mesh` (the devices a `keras.distribution` splits a batch over), `files`
(`.npz`, CSV and image folders named on the command line).
"""
