"""Router backends: a namespace on a host kernel with netem, or a User-mode Linux guest."""
