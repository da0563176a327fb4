"""Generation backends behind one interface (`base.Backend`): procedural, comfyui, runpod (`registry`)."""
