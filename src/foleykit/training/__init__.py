"""Training for every stage of every recipe (accelerate: CPU, one GPU, several GPUs / nodes).

Entry points (import the submodules; this package stays light):

- ``foleykit.training.run.train_recipe(recipe=..., level=..., stage=..., data=..., resume=..., overrides=...)``:
  what ``foleykit train`` runs (stage plan, resolved config, data, feature cache, stages, model folder);
- ``foleykit.training.trainer.Trainer(stage=...).fit(resume=...)``: the generic loop for one stage;
- ``foleykit.training.stages``: the stage families (autoencoder, vocoder, prior, semantic, predictor, adapter)
  and ``stages.base.Stage`` to write new ones;
- ``foleykit.training.config``: the resolved run config and ``key=value`` overrides.

See docs/training.md.
"""
