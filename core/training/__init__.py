"""Training a character: LoRA and DreamBooth jobs on its references, run by the worker.

config.py      TrainingConfig (plain data, JSON, validation; no torch)
dataset.py     references -> cropped, bucketed, captioned pictures; the data order
conditioning   captions encoded as the pipelines encode prompts; SDXL size ids
lora_trainer   the loop: noise, timesteps, loss, optimizer, precision, checkpoint state
checkpoints    atomic .safetensors checkpoints with optimizer and RNG state, last K kept
dreambooth     class images for prior preservation, resumable
kohya_export   the LoRA in kohya's key format with its metadata
samples        sample and class images rendered with the model being trained
output         the trained file registered as the character's next model version
handlers       the "train-lora" and "train-dreambooth" job handlers

Importing this package is light (no torch). The worker finds the two job kinds through the
job-kind table (core/jobs/kinds.py); the handlers import the heavy modules when a job runs.
"""
