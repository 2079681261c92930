"""Training tasks as LightningModules: pretraining (MLM, source linking) and fine-tuning."""
