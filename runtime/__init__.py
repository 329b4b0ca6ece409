"""hardwire's runtime: runs compiled weight files with PyTorch (needs torch and safetensors only)."""
