"""`hwsim sweep`: design-space exploration over accelerator configs and bit widths."""
