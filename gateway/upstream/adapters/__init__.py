"""LoRA adapters on vLLM engines: loaded and unloaded at run time (vLLM's
`/v1/load_lora_adapter`), listed and routed as models of their own."""
