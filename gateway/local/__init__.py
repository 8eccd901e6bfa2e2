"""`gateway up`: the whole stack on one machine, with small real models on vLLM's CPU build."""
