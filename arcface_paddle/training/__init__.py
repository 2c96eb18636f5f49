"""Recognition training: configs, lr schedules, checkpoints, samplers, optimisers and the trainer."""
