"""`hwsim report`: measure, render and write the float-vs-int8 accelerator report."""
