"""hwsim: accelerator configuration, mapping, engines, reporting and the CLI."""
